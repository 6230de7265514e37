import { InvalidPacketError, MalformedPacketError, type MqttErrorOptions } from "./errors.js";
import { decodeWellFormedUtf8, hasNativeStrings, platformEncodeUtf8 } from "./runtime.js";

// MQTT strings must be well-formed UTF-8 without surrogates [MQTT-1.5.4-1] and without U+0000
// [MQTT-1.5.4-2]. A leading U+FEFF is kept as it is, never stripped [MQTT-1.5.4-3]. The
// noncharacters U+FFFE and U+FFFF and the control characters are allowed ("SHOULD NOT").

function invalid(at: number, options?: MqttErrorOptions): never {
  throw new MalformedPacketError(
    "INVALID_UTF8",
    `ill-formed UTF-8 at byte ${at} [MQTT-1.5.4-1]`,
    options,
  );
}

function nul(options?: MqttErrorOptions): never {
  throw new MalformedPacketError(
    "NULL_CHARACTER",
    "string contains U+0000 [MQTT-1.5.4-2]",
    options,
  );
}

/** Checks bytes start..end; throws MalformedPacketError (INVALID_UTF8 or NULL_CHARACTER). */
export function validateUtf8(
  buf: Uint8Array,
  start = 0,
  end = buf.length,
  options?: MqttErrorOptions,
): void {
  let i = start;
  while (i < end) {
    const c = buf[i]!;
    if (c < 0x80) {
      if (c === 0) nul(options);
      i++;
      continue;
    }
    if (c < 0xc2) invalid(i, options); // a stray continuation byte, or an overlong 2-byte form
    if (c < 0xe0) {
      if (i + 1 >= end || (buf[i + 1]! & 0xc0) !== 0x80) invalid(i, options);
      i += 2;
      continue;
    }
    if (c < 0xf0) {
      if (i + 2 >= end) invalid(i, options);
      const b1 = buf[i + 1]!;
      // E0 needs A0..BF (no overlong forms); ED needs 80..9F (no surrogates D800..DFFF)
      const lo = c === 0xe0 ? 0xa0 : 0x80;
      const hi = c === 0xed ? 0x9f : 0xbf;
      if (b1 < lo || b1 > hi || (buf[i + 2]! & 0xc0) !== 0x80) invalid(i, options);
      i += 3;
      continue;
    }
    if (c < 0xf5) {
      if (i + 3 >= end) invalid(i, options);
      const b1 = buf[i + 1]!;
      // F0 needs 90..BF (no overlong forms); F4 needs 80..8F (nothing above U+10FFFF)
      const lo = c === 0xf0 ? 0x90 : 0x80;
      const hi = c === 0xf4 ? 0x8f : 0xbf;
      if (b1 < lo || b1 > hi || (buf[i + 2]! & 0xc0) !== 0x80 || (buf[i + 3]! & 0xc0) !== 0x80) {
        invalid(i, options);
      }
      i += 4;
      continue;
    }
    invalid(i, options);
  }
}

/** Whether `bytes` is well-formed UTF-8 without U+0000, as MQTT strings must be. */
export function isValidUtf8(bytes: Uint8Array): boolean {
  try {
    validateUtf8(bytes);
    return true;
  } catch {
    return false;
  }
}

function asciiString(buf: Uint8Array, start: number, end: number): string {
  let out = "";
  for (let i = start; i < end; i++) out += String.fromCharCode(buf[i]!);
  return out;
}

/** Decodes and validates the MQTT string in bytes start..end. */
export function readUtf8(
  buf: Uint8Array,
  start: number,
  end: number,
  options?: MqttErrorOptions,
): string {
  let i = start;
  for (; i < end; i++) {
    const c = buf[i]!;
    if (c >= 0x80) break;
    if (c === 0) nul(options);
  }
  if (i === end) {
    if (start === end) return "";
    if (hasNativeStrings(buf)) return buf.latin1Slice(start, end);
    return asciiString(buf, start, end);
  }
  validateUtf8(buf, i, end, options);
  if (hasNativeStrings(buf)) return buf.utf8Slice(start, end);
  return decodeWellFormedUtf8(buf.subarray(start, end));
}

// The encoder's checks: a bad string there is the caller's mistake, not a malformed packet.
function badString(why: string, options?: MqttErrorOptions): never {
  throw new InvalidPacketError(`string ${why} [MQTT-1.5.4-1]`, options);
}

/**
 * The UTF-8 length of `text`, for the encoder. Throws InvalidPacketError when the string
 * cannot be an MQTT string: a lone surrogate or U+0000.
 */
export function utf8Length(text: string, options?: MqttErrorOptions): number {
  const n = text.length;
  let len = n;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) {
      if (c === 0) badString("contains U+0000 [MQTT-1.5.4-2]", options);
    } else if (c < 0x800) {
      len += 1;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const d = c <= 0xdbff && i + 1 < n ? text.charCodeAt(i + 1) : 0;
      if (d < 0xdc00 || d > 0xdfff) badString(`lone surrogate at index ${i}`, options);
      i++;
      len += 2; // 2 UTF-16 units become 4 bytes
    } else {
      len += 2;
    }
  }
  return len;
}

/**
 * Writes `text` (validated by utf8Length, `byteLength` bytes) at `pos`; returns the new offset.
 */
export function writeUtf8(buf: Uint8Array, pos: number, text: string, byteLength: number): number {
  const n = text.length;
  if (n === byteLength) {
    for (let i = 0; i < n; i++) buf[pos + i] = text.charCodeAt(i);
    return pos + n;
  }
  if (byteLength > 256 && hasNativeStrings(buf)) return pos + buf.utf8Write(text, pos, byteLength);
  for (let i = 0; i < n; i++) {
    let c = text.charCodeAt(i);
    if (c < 0x80) {
      buf[pos++] = c;
    } else if (c < 0x800) {
      buf[pos++] = 0xc0 | (c >> 6);
      buf[pos++] = 0x80 | (c & 0x3f);
    } else if (c >= 0xd800 && c <= 0xdbff) {
      c = 0x10000 + ((c - 0xd800) << 10) + (text.charCodeAt(++i) - 0xdc00);
      buf[pos++] = 0xf0 | (c >> 18);
      buf[pos++] = 0x80 | ((c >> 12) & 0x3f);
      buf[pos++] = 0x80 | ((c >> 6) & 0x3f);
      buf[pos++] = 0x80 | (c & 0x3f);
    } else {
      buf[pos++] = 0xe0 | (c >> 12);
      buf[pos++] = 0x80 | ((c >> 6) & 0x3f);
      buf[pos++] = 0x80 | (c & 0x3f);
    }
  }
  return pos;
}

/** UTF-8 bytes of any string (a payload, say); lone surrogates become U+FFFD. */
export function encodeUtf8(text: string): Uint8Array {
  const native = platformEncodeUtf8(text);
  if (native) return native;
  const out = new Uint8Array(text.length * 3);
  let pos = 0;
  for (const ch of text) {
    let cp = ch.codePointAt(0)!;
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
    pos = writeUtf8(
      out,
      pos,
      String.fromCodePoint(cp),
      cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4,
    );
  }
  return out.subarray(0, pos);
}

/** A payload as text; ill-formed sequences become U+FFFD (payloads need not be UTF-8). */
export function decodeUtf8(bytes: Uint8Array): string {
  if (hasNativeStrings(bytes)) return bytes.utf8Slice(0, bytes.length);
  return decodeWellFormedUtf8(bytes);
}

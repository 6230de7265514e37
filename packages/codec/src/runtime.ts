// The codec runs anywhere (no node:* import). Where Node's Buffer exists, its pooled allocation
// and native string slicing are much faster than the portable paths, so they are used when found.

interface BufferStatic {
  allocUnsafe(size: number): Uint8Array;
}

/** The native string methods of a Node Buffer (present on every Buffer instance). */
export interface NativeStringBytes extends Uint8Array {
  latin1Slice(start: number, end: number): string;
  utf8Slice(start: number, end: number): string;
  utf8Write(text: string, offset: number, length: number): number;
}

interface TextDecoderLike {
  decode(bytes: Uint8Array): string;
}
interface TextEncoderLike {
  encode(text: string): Uint8Array;
}

const runtime = globalThis as unknown as {
  Buffer?: BufferStatic;
  TextDecoder?: new (
    label: string,
    options: { fatal: boolean; ignoreBOM: boolean },
  ) => TextDecoderLike;
  TextEncoder?: new () => TextEncoderLike;
};

const nodeBuffer = runtime.Buffer;

/** Uninitialised bytes: callers write every byte they return. */
export const allocBytes: (size: number) => Uint8Array =
  nodeBuffer !== undefined && typeof nodeBuffer.allocUnsafe === "function"
    ? (size) => nodeBuffer.allocUnsafe(size)
    : (size) => new Uint8Array(size);

/** Whether `bytes` has Node's native string methods. */
export function hasNativeStrings(bytes: Uint8Array): bytes is NativeStringBytes {
  return typeof (bytes as Partial<NativeStringBytes>).utf8Slice === "function";
}

// ignoreBOM keeps a leading U+FEFF: MQTT strings must not lose it [MQTT-1.5.4-3].
const textDecoder = runtime.TextDecoder
  ? new runtime.TextDecoder("utf-8", { fatal: false, ignoreBOM: true })
  : null;
const textEncoder = runtime.TextEncoder ? new runtime.TextEncoder() : null;

/** Decodes bytes already known to be well-formed UTF-8. */
export function decodeWellFormedUtf8(bytes: Uint8Array): string {
  if (textDecoder) return textDecoder.decode(bytes);
  return decodeUtf8Portable(bytes);
}

/** Encodes a string as UTF-8 with the platform encoder when there is one. */
export function platformEncodeUtf8(text: string): Uint8Array | null {
  return textEncoder ? textEncoder.encode(text) : null;
}

function decodeUtf8Portable(bytes: Uint8Array): string {
  let out = "";
  let i = 0;
  while (i < bytes.length) {
    const c = bytes[i]!;
    let cp: number;
    if (c < 0x80) {
      cp = c;
      i += 1;
    } else if (c < 0xe0) {
      cp = ((c & 0x1f) << 6) | (bytes[i + 1]! & 0x3f);
      i += 2;
    } else if (c < 0xf0) {
      cp = ((c & 0x0f) << 12) | ((bytes[i + 1]! & 0x3f) << 6) | (bytes[i + 2]! & 0x3f);
      i += 3;
    } else {
      cp =
        ((c & 0x07) << 18) |
        ((bytes[i + 1]! & 0x3f) << 12) |
        ((bytes[i + 2]! & 0x3f) << 6) |
        (bytes[i + 3]! & 0x3f);
      i += 4;
    }
    out += String.fromCodePoint(cp);
  }
  return out;
}

import { MAX_PACKET_SIZE, PacketType, type ProtocolVersion } from "./constants.js";
import { decodeBody } from "./decode-packet.js";
import { MalformedPacketError, PacketTooLargeError } from "./errors.js";
import type { Packet } from "./packets.js";
import { Reader } from "./reader.js";
import { allocBytes } from "./runtime.js";

/** Options of a Decoder and of decodePacket. */
export interface DecoderOptions {
  /**
   * The protocol level of the connection (3, 4 or 5; default 4). A decoded CONNECT sets it to
   * the level it announces, so a server need not know it beforehand.
   */
  protocolVersion?: ProtocolVersion;
  /**
   * The largest packet accepted, in bytes with the fixed header (default: the protocol's
   * maximum, 268,435,460). A larger one fails as soon as its remaining length is read, before
   * any of its body is buffered.
   */
  maximumPacketSize?: number;
  /**
   * The most topic filters one SUBSCRIBE or UNSUBSCRIBE may carry (default: no limit). One
   * more fails the packet with a ProtocolError (TOO_MANY_TOPIC_FILTERS, reason code 0x97
   * Quota exceeded) as soon as it is reached, before the rest is decoded.
   */
  maximumTopicFilters?: number;
  /**
   * The most user properties one property list may carry (default: no limit). One more fails
   * the packet with a ProtocolError (TOO_MANY_USER_PROPERTIES, reason code 0x97) before it is
   * read.
   */
  maximumUserProperties?: number;
  /**
   * The caller reuses each pushed chunk once push returns (a transport that reads every time
   * into the same buffer). Payloads, binary properties and passwords are then copied out of
   * the chunk instead of being views into it. Default false.
   */
  reusedChunks?: boolean;
}

/** Called with each packet, in stream order. */
export type PacketHandler = (packet: Packet) => void;

// When a frame straddles chunks, its body is gathered in a buffer that grows with the bytes
// that actually arrived (never more than twice those, never more than the frame), so a peer
// that announces a large packet and then trickles gets no more memory than it sent.
const MIN_GATHER = 4096;

// Decoding is synchronous and finishes before a packet is handed over, so every decoder can
// share one reader instead of keeping one per connection.
const sharedReader = new Reader();

/**
 * An incremental MQTT decoder: push any split of the byte stream, down to one byte at a time,
 * and every complete packet is handed to `onPacket` in order. Payloads, binary properties and
 * passwords of a frame that lay in one chunk are views into that chunk (no copy), unless the
 * `reusedChunks` option says the caller overwrites its chunks.
 *
 * A MqttError thrown by push means the stream is broken: close the connection. Packets that
 * were complete before the bad one have been delivered already.
 */
export class Decoder {
  protocolVersion: ProtocolVersion;
  maximumPacketSize: number;
  /** See DecoderOptions.maximumTopicFilters. */
  maximumTopicFilters: number;
  /** See DecoderOptions.maximumUserProperties. */
  maximumUserProperties: number;
  private readonly onPacket: PacketHandler;
  private readonly reusedChunks: boolean;
  /** Fixed header bytes of a frame whose header straddles chunks (made on first need). */
  private head: Uint8Array | null = null;
  private headLength = 0;
  /** The body of a frame that straddles chunks. */
  private body: Uint8Array | null = null;
  private bodyFill = 0;
  private bodyLength = 0;
  /** Fixed header bytes of the frame being gathered (they count as buffered). */
  private bodyHead = 0;
  private first = 0;

  constructor(onPacket: PacketHandler, options: DecoderOptions = {}) {
    this.onPacket = onPacket;
    this.protocolVersion = options.protocolVersion ?? 4;
    this.maximumPacketSize = options.maximumPacketSize ?? MAX_PACKET_SIZE;
    this.maximumTopicFilters = options.maximumTopicFilters ?? Number.POSITIVE_INFINITY;
    this.maximumUserProperties = options.maximumUserProperties ?? Number.POSITIVE_INFINITY;
    this.reusedChunks = options.reusedChunks ?? false;
  }

  /** Bytes held for a packet that is not complete yet. */
  get bufferedBytes(): number {
    return this.headLength + (this.body === null ? 0 : this.bodyHead + this.bodyFill);
  }

  /** Drops a partly received packet. */
  reset(): void {
    this.headLength = 0;
    this.body = null;
    this.bodyFill = 0;
    this.bodyLength = 0;
  }

  /** Decodes what `chunk` completes; keeps what remains for the next push. */
  push(chunk: Uint8Array): void {
    const len = chunk.length;
    let off = 0;
    if (this.headLength > 0 || this.body !== null) {
      off = this.resume(chunk);
      if (off < 0) return;
    }
    while (off < len) {
      const first = chunk[off]!;
      let i = off + 1;
      let rl = 0;
      let multiplier = 1;
      let complete = false;
      for (let k = 0; k < 4 && i < len; k++) {
        const b = chunk[i++]!;
        rl += (b & 0x7f) * multiplier;
        if (b < 0x80) {
          if (b === 0 && k > 0 && this.protocolVersion === 5) this.nonMinimal(first);
          complete = true;
          break;
        }
        multiplier *= 128;
      }
      if (!complete) {
        if (i - off === 5) this.tooLong(first);
        // The header itself straddles: keep its bytes (at most 4) for the next push.
        (this.head ??= new Uint8Array(5)).set(chunk.subarray(off, len));
        this.headLength = len - off;
        return;
      }
      const total = i - off + rl;
      this.checkSize(first, total);
      if (len - off >= total) {
        off += total;
        this.dispatch(first, chunk, i, off, this.reusedChunks);
      } else {
        this.gather(first, i - off, rl, chunk, i);
        return;
      }
    }
  }

  /** Continues a straddling frame; returns where normal decoding resumes, or -1. */
  private resume(chunk: Uint8Array): number {
    let off = 0;
    const len = chunk.length;
    if (this.body === null) {
      const head = this.head!;
      for (;;) {
        if (off >= len) return -1;
        const b = chunk[off++]!;
        head[this.headLength++] = b;
        if (b < 0x80) {
          if (b === 0 && this.headLength > 2 && this.protocolVersion === 5)
            this.nonMinimal(head[0]!);
          break;
        }
        if (this.headLength === 5) this.tooLong(head[0]!);
      }
      const first = head[0]!;
      let rl = 0;
      let multiplier = 1;
      for (let k = 1; k < this.headLength; k++) {
        rl += (head[k]! & 0x7f) * multiplier;
        multiplier *= 128;
      }
      const headLength = this.headLength;
      this.checkSize(first, headLength + rl);
      this.headLength = 0;
      if (len - off >= rl) {
        off += rl;
        this.dispatch(first, chunk, off - rl, off, this.reusedChunks);
        return off;
      }
      this.gather(first, headLength, rl, chunk, off);
      return -1;
    }
    const take = Math.min(this.bodyLength - this.bodyFill, len);
    this.append(chunk, 0, take);
    if (this.bodyFill < this.bodyLength) return -1;
    const body = this.body;
    this.body = null;
    this.bodyFill = 0;
    // The gathered body is this decoder's own: views into it stay valid.
    this.dispatch(this.first, body, 0, this.bodyLength, false);
    return take;
  }

  private gather(
    first: number,
    headLength: number,
    bodyLength: number,
    chunk: Uint8Array,
    start: number,
  ): void {
    const avail = chunk.length - start;
    this.first = first;
    this.bodyHead = headLength;
    this.bodyLength = bodyLength;
    this.bodyFill = 0;
    this.body = allocBytes(Math.min(bodyLength, Math.max(MIN_GATHER, avail * 2)));
    this.append(chunk, start, avail);
  }

  private append(chunk: Uint8Array, start: number, count: number): void {
    let body = this.body!;
    const need = this.bodyFill + count;
    if (need > body.length) {
      const grown = allocBytes(Math.min(this.bodyLength, Math.max(body.length * 2, need)));
      grown.set(body.subarray(0, this.bodyFill));
      this.body = body = grown;
    }
    body.set(chunk.subarray(start, start + count), this.bodyFill);
    this.bodyFill = need;
  }

  private checkSize(first: number, total: number): void {
    if (total > this.maximumPacketSize) {
      this.reset();
      // v5 3.1.2.11.4 / 3.2.2.3.6: a packet over the limit is answered with 0x95.
      throw new PacketTooLargeError(total, this.maximumPacketSize, { packetType: first >> 4 });
    }
  }

  private nonMinimal(first: number): never {
    this.reset();
    throw new MalformedPacketError(
      "NON_MINIMAL_VARINT",
      "remaining length not minimally encoded [MQTT-1.5.5-1]",
      { packetType: first >> 4 },
    );
  }

  private tooLong(first: number): never {
    this.reset();
    throw new MalformedPacketError(
      "REMAINING_LENGTH_TOO_LONG",
      "remaining length longer than 4 bytes [MQTT-1.5.5]",
      { packetType: first >> 4 },
    );
  }

  /** Decodes one whole frame; `copy`: byte fields are copied out of `buf`, not views. */
  private dispatch(
    first: number,
    buf: Uint8Array,
    start: number,
    end: number,
    copy: boolean,
  ): void {
    const r = sharedReader;
    r.reset(buf, start, end, first >> 4, this.protocolVersion);
    r.copy = copy;
    r.maxTopicFilters = this.maximumTopicFilters;
    r.maxUserProperties = this.maximumUserProperties;
    let packet: Packet;
    try {
      packet = decodeBody(r, first);
    } finally {
      // The reader must not keep the chunk alive once the packet is decoded.
      r.release();
    }
    if (packet.type === PacketType.CONNECT) this.protocolVersion = packet.protocolVersion;
    this.onPacket(packet);
  }
}

/**
 * Decodes `bytes` holding exactly one packet. Throws MalformedPacketError (TRUNCATED_PACKET)
 * when it is incomplete and (TRAILING_BYTES) when more follows.
 */
export function decodePacket(bytes: Uint8Array, options: DecoderOptions = {}): Packet {
  let result: Packet | undefined;
  let count = 0;
  const decoder = new Decoder((p) => {
    result = p;
    count++;
  }, options);
  decoder.push(bytes);
  if (count === 0)
    throw new MalformedPacketError("TRUNCATED_PACKET", "the bytes end inside a packet");
  if (count > 1 || decoder.bufferedBytes > 0) {
    throw new MalformedPacketError("TRAILING_BYTES", "the bytes hold more than one packet");
  }
  return result!;
}

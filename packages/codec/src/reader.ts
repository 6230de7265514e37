import type { ProtocolVersion } from "./constants.js";
import { MalformedPacketError, type MqttErrorCode, ProtocolError } from "./errors.js";
import { ReasonCode } from "./reason-codes.js";
import { readUtf8 } from "./utf8.js";

const EMPTY = new Uint8Array(0);
const sliceCopy = Uint8Array.prototype.slice;

/**
 * A cursor over one packet body. The decoder keeps one and re-points it at each packet, so
 * decoding allocates nothing but the packet itself.
 */
export class Reader {
  buf: Uint8Array = EMPTY;
  pos = 0;
  end = 0;
  /** The packet type being decoded, for error reports. */
  type = 0;
  version: ProtocolVersion = 4;
  /** binary() and rest() return copies, not views (the bytes are about to be overwritten). */
  copy = false;
  /** Most topic filters one SUBSCRIBE or UNSUBSCRIBE may carry. */
  maxTopicFilters = Number.POSITIVE_INFINITY;
  /** Most user properties one property list may carry. */
  maxUserProperties = Number.POSITIVE_INFINITY;

  reset(buf: Uint8Array, pos: number, end: number, type: number, version: ProtocolVersion): void {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
    this.type = type;
    this.version = version;
  }

  /** Drops the reference to the decoded bytes. */
  release(): void {
    this.buf = EMPTY;
    this.pos = 0;
    this.end = 0;
    this.copy = false;
  }

  /**
   * Fails a SUBSCRIBE or UNSUBSCRIBE that already holds `count` topic filters and has more:
   * checked as each filter is read, so a packet of millions is refused after the first few.
   */
  checkTopicFilterCount(count: number): void {
    if (count >= this.maxTopicFilters)
      this.quotaExceeded("TOO_MANY_TOPIC_FILTERS", this.maxTopicFilters, "topic filters");
  }

  /** Fails a property list that already holds `count` user properties and has one more. */
  checkUserPropertyCount(count: number): void {
    if (count >= this.maxUserProperties)
      this.quotaExceeded("TOO_MANY_USER_PROPERTIES", this.maxUserProperties, "user properties");
  }

  private quotaExceeded(code: MqttErrorCode, limit: number, what: string): never {
    this.protocolError(code, `more than ${limit} ${what} in one packet`, ReasonCode.QUOTA_EXCEEDED);
  }

  /** Bytes left in the packet body. */
  get left(): number {
    return this.end - this.pos;
  }

  malformed(code: MqttErrorCode, message: string): never {
    throw new MalformedPacketError(code, message, { packetType: this.type });
  }

  protocolError(code: MqttErrorCode, message: string, reasonCode?: number): never {
    const options =
      reasonCode === undefined ? { packetType: this.type } : { packetType: this.type, reasonCode };
    throw new ProtocolError(code, message, options);
  }

  private truncated(): never {
    this.malformed("TRUNCATED_PACKET", "packet ends before its fields do");
  }

  u8(): number {
    if (this.pos >= this.end) this.truncated();
    return this.buf[this.pos++]!;
  }

  u16(): number {
    const p = this.pos;
    if (p + 2 > this.end) this.truncated();
    this.pos = p + 2;
    return (this.buf[p]! << 8) | this.buf[p + 1]!;
  }

  u32(): number {
    const p = this.pos;
    if (p + 4 > this.end) this.truncated();
    this.pos = p + 4;
    const b = this.buf;
    return b[p]! * 0x1000000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
  }

  /** A variable byte integer (v5 1.5.5): at most 4 bytes, minimal encoding [MQTT-1.5.5-1]. */
  varint(): number {
    let value = 0;
    let multiplier = 1;
    for (let i = 0; i < 4; i++) {
      const byte = this.u8();
      value += (byte & 0x7f) * multiplier;
      if ((byte & 0x80) === 0) {
        if (byte === 0 && i > 0) {
          this.malformed(
            "NON_MINIMAL_VARINT",
            "variable byte integer not minimally encoded [MQTT-1.5.5-1]",
          );
        }
        return value;
      }
      multiplier *= 128;
    }
    this.malformed(
      "REMAINING_LENGTH_TOO_LONG",
      "variable byte integer longer than 4 bytes [MQTT-1.5.5]",
    );
  }

  /** A UTF-8 string with a 2-byte length prefix (1.5.4). */
  utf8(): string {
    const len = this.u16();
    const start = this.pos;
    if (start + len > this.end) this.truncated();
    this.pos = start + len;
    return readUtf8(this.buf, start, start + len, { packetType: this.type });
  }

  /** Binary data with a 2-byte length prefix (v5 1.5.6): a view unless `copy` is set. */
  binary(): Uint8Array {
    const len = this.u16();
    const start = this.pos;
    if (start + len > this.end) this.truncated();
    this.pos = start + len;
    return this.bytes(start, start + len);
  }

  /** The rest of the body: a view unless `copy` is set. */
  rest(): Uint8Array {
    const out = this.bytes(this.pos, this.end);
    this.pos = this.end;
    return out;
  }

  private bytes(start: number, end: number): Uint8Array {
    // Uint8Array's slice, not Buffer's (which returns a view): a copy of the same class.
    return this.copy ? sliceCopy.call(this.buf, start, end) : this.buf.subarray(start, end);
  }

  /** A packet identifier, which is never 0 [MQTT-2.2.1-3]. */
  packetId(): number {
    const id = this.u16();
    if (id === 0)
      this.protocolError("ZERO_PACKET_ID", "packet identifier 0 [MQTT-2.2.1-3] [MQTT-2.3.1-1]");
    return id;
  }

  /** Fails when bytes remain after the last field. */
  done(): void {
    if (this.pos !== this.end) {
      this.malformed(
        "TRAILING_BYTES",
        `${this.end - this.pos} unexpected bytes at the end of the packet`,
      );
    }
  }
}

import { crc32 } from "./crc32.js";

// A record on disk: magic "MQR1", payload length and CRC-32 (little endian), payload. The
// magic lets a reader find the next record after a damaged one.
const MAGIC = 0x3152514d;
const HEADER = 12;

/** Frames `payload` as one record. */
export function frame(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER + payload.length);
  out.writeUInt32LE(MAGIC, 0);
  out.writeUInt32LE(payload.length, 4);
  out.writeUInt32LE(crc32(payload), 8);
  out.set(payload, HEADER);
  return out;
}

/**
 * The payloads of the records in `buf`, in order. A damaged record (bad checksum, cut short,
 * garbage between records) is reported to `onDamage` and skipped; reading goes on at the next
 * record found.
 */
export function readFrames(buf: Buffer, onDamage: (offset: number, why: string) => void): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < buf.length) {
    if (buf.length - pos < HEADER) {
      onDamage(pos, `${buf.length - pos} bytes cut short`);
      break;
    }
    if (buf.readUInt32LE(pos) !== MAGIC) {
      const next = findMagic(buf, pos + 1);
      onDamage(pos, `${next - pos} bytes of garbage`);
      pos = next;
      continue;
    }
    const length = buf.readUInt32LE(pos + 4);
    const end = pos + HEADER + length;
    if (end > buf.length) {
      const next = findMagic(buf, pos + 1);
      onDamage(pos, next === buf.length ? "a record cut short" : "a record with a bad length");
      pos = next;
      continue;
    }
    const payload = buf.subarray(pos + HEADER, end);
    if (crc32(payload) !== buf.readUInt32LE(pos + 8)) {
      const next = findMagic(buf, pos + 1);
      onDamage(pos, "a record with a bad checksum");
      pos = next;
      continue;
    }
    out.push(payload);
    pos = end;
  }
  return out;
}

function findMagic(buf: Buffer, from: number): number {
  const at = buf.indexOf("MQR1", from, "latin1");
  return at === -1 ? buf.length : at;
}

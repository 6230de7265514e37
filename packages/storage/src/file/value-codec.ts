// A compact binary form for the plain values the file backend writes: null, booleans,
// numbers, strings, byte arrays, arrays and objects. JSON cannot hold bytes without base64,
// which would triple the cost of every payload written.

const NULL = 0;
const FALSE = 1;
const TRUE = 2;
const FLOAT = 3;
const STRING = 4;
const BYTES = 5;
const ARRAY = 6;
const OBJECT = 7;
const INT = 8;

/** Thrown when bytes do not decode: the record is damaged. */
export class DecodeError extends Error {}

class Writer {
  buf = Buffer.allocUnsafe(256);
  pos = 0;

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  u32(n: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(n, this.pos);
    this.pos += 4;
  }

  string(s: string): void {
    const max = s.length * 3;
    this.ensure(4 + max);
    const n = this.buf.write(s, this.pos + 4, "utf8");
    this.buf.writeUInt32LE(n, this.pos);
    this.pos += 4 + n;
  }

  value(v: unknown): void {
    if (v === null || v === undefined) {
      this.byte(NULL);
      return;
    }
    switch (typeof v) {
      case "boolean":
        this.byte(v ? TRUE : FALSE);
        return;
      case "number":
        if (Number.isInteger(v) && v >= -0x80000000 && v <= 0x7fffffff) {
          this.ensure(5);
          this.buf[this.pos] = INT;
          this.buf.writeInt32LE(v, this.pos + 1);
          this.pos += 5;
        } else {
          this.ensure(9);
          this.buf[this.pos] = FLOAT;
          this.buf.writeDoubleLE(v, this.pos + 1);
          this.pos += 9;
        }
        return;
      case "string":
        this.byte(STRING);
        this.string(v);
        return;
      case "object":
        break;
      default:
        throw new TypeError(`cannot store a ${typeof v}`);
    }
    if (v instanceof Uint8Array) {
      this.byte(BYTES);
      this.u32(v.length);
      this.ensure(v.length);
      this.buf.set(v, this.pos);
      this.pos += v.length;
      return;
    }
    if (Array.isArray(v)) {
      this.byte(ARRAY);
      this.u32(v.length);
      for (const item of v) this.value(item);
      return;
    }
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    this.byte(OBJECT);
    this.u32(entries.length);
    for (const [key, x] of entries) {
      this.string(key);
      this.value(x);
    }
  }
}

/** Encodes a value; the result is a view of a fresh buffer. */
export function encodeValue(value: unknown): Buffer {
  const w = new Writer();
  w.value(value);
  return w.buf.subarray(0, w.pos);
}

class Reader {
  pos = 0;
  constructor(private readonly buf: Buffer) {}

  need(n: number): void {
    if (this.pos + n > this.buf.length) throw new DecodeError("value runs past its record");
  }

  u32(): number {
    this.need(4);
    const n = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return n;
  }

  string(): string {
    const n = this.u32();
    this.need(n);
    const s = this.buf.toString("utf8", this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  value(depth: number): unknown {
    if (depth > 32) throw new DecodeError("values nested too deep");
    this.need(1);
    const tag = this.buf[this.pos++];
    switch (tag) {
      case NULL:
        return null;
      case FALSE:
        return false;
      case TRUE:
        return true;
      case INT: {
        this.need(4);
        const n = this.buf.readInt32LE(this.pos);
        this.pos += 4;
        return n;
      }
      case FLOAT: {
        this.need(8);
        const n = this.buf.readDoubleLE(this.pos);
        this.pos += 8;
        return n;
      }
      case STRING:
        return this.string();
      case BYTES: {
        const n = this.u32();
        this.need(n);
        // A copy: the value outlives the file buffer it was read from.
        const out = new Uint8Array(n);
        out.set(this.buf.subarray(this.pos, this.pos + n));
        this.pos += n;
        return out;
      }
      case ARRAY: {
        const n = this.u32();
        if (n > this.buf.length - this.pos) throw new DecodeError("array longer than its record");
        const out: unknown[] = [];
        for (let i = 0; i < n; i++) out.push(this.value(depth + 1));
        return out;
      }
      case OBJECT: {
        const n = this.u32();
        if (n > this.buf.length - this.pos) throw new DecodeError("object longer than its record");
        const out: Record<string, unknown> = {};
        for (let i = 0; i < n; i++) {
          const key = this.string();
          out[key] = this.value(depth + 1);
        }
        return out;
      }
      default:
        throw new DecodeError(`unknown value tag ${tag}`);
    }
  }
}

/** Decodes what encodeValue wrote; throws DecodeError on damaged bytes. */
export function decodeValue(bytes: Buffer): unknown {
  const r = new Reader(bytes);
  const value = r.value(0);
  if (r.pos !== bytes.length) throw new DecodeError("bytes left after the value");
  return value;
}

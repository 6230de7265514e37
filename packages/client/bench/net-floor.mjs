// A yardstick for the client benchmark, not a client: the least a Node.js program on net.Socket
// can do to publish. It sends CONNECT, writes QoS 0 PUBLISH packets from one prepared template
// and QoS 1 ones with a packet id patched in, and resolves a publish's promise when its PUBACK
// comes. No options, properties, topic checks, flow control, keep alive or reconnection. Packets
// written in one task leave in one write, as the clients do. What it costs per message is what
// Node's socket costs: a wake-up, a read and a write per batch of acknowledgements.
import { connect as tcpConnect } from "node:net";

const CONNACK = 0x20;
const PUBACK = 0x40;

/** The encoded PUBLISH of `topic` with `payload`, QoS `qos`, packet id 0 (patched per send). */
function publishTemplate(topic, payload, qos) {
  const t = Buffer.from(topic);
  const bodyLength = 2 + t.length + (qos > 0 ? 2 : 0) + payload.length;
  if (bodyLength > 127) throw new RangeError("the floor client only makes packets under 128 bytes");
  const packet = Buffer.alloc(2 + bodyLength);
  packet[0] = 0x30 | (qos << 1);
  packet[1] = bodyLength;
  packet.writeUInt16BE(t.length, 2);
  t.copy(packet, 4);
  payload.copy(packet, packet.length - payload.length);
  return { packet, idAt: 4 + t.length };
}

/** Connects with MQTT 3.1.1, clean session, keep alive 0; resolves once CONNACK came. */
export function connectFloor(port) {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(port, "127.0.0.1");
    socket.setNoDelay(true);
    const clientId = Buffer.from(`floor-${process.pid}-${Math.random().toString(36).slice(2)}`);
    const connect = Buffer.alloc(14 + clientId.length);
    connect.set([0x10, 12 + clientId.length, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x02, 0, 0], 0);
    connect.writeUInt16BE(clientId.length, 12);
    clientId.copy(connect, 14);
    socket.write(connect);
    const waiting = new Map();
    let nextId = 1;
    let out = [];
    let flushQueued = false;
    let rest = null;
    const flush = () => {
      flushQueued = false;
      const list = out;
      out = [];
      socket.write(list.length === 1 ? list[0] : Buffer.concat(list));
    };
    const send = (bytes) => {
      out.push(bytes);
      if (!flushQueued) {
        flushQueued = true;
        queueMicrotask(flush);
      }
    };
    socket.once("error", reject);
    socket.on("data", (chunk) => {
      const buf = rest === null ? chunk : Buffer.concat([rest, chunk]);
      rest = null;
      let at = 0;
      // Only CONNACK and PUBACK come (2-byte bodies): 4 bytes each.
      while (buf.length - at >= 4) {
        const type = buf[at] & 0xf0;
        if (type === PUBACK) {
          const id = buf.readUInt16BE(at + 2);
          const done = waiting.get(id);
          waiting.delete(id);
          done?.();
        } else if (type === CONNACK) {
          resolve(floorClient);
        }
        at += 4;
      }
      if (at < buf.length) rest = buf.subarray(at);
    });
    const templates = new Map();
    const template = (topic, payload, qos) => {
      const key = `${qos}:${topic}`;
      let t = templates.get(key);
      if (t === undefined) templates.set(key, (t = publishTemplate(topic, payload, qos)));
      return t;
    };
    const floorClient = {
      publish0(topic, payload) {
        send(template(topic, payload, 0).packet);
        return Promise.resolve();
      },
      publish1(topic, payload) {
        const { packet, idAt } = template(topic, payload, 1);
        const id = nextId;
        nextId = nextId === 65535 ? 1 : nextId + 1;
        const copy = Buffer.from(packet);
        copy.writeUInt16BE(id, idAt);
        send(copy);
        return new Promise((done) => waiting.set(id, done));
      },
      end() {
        socket.end(Buffer.from([0xe0, 0]));
        return new Promise((done) => socket.once("close", done));
      },
    };
  });
}

// The Node.js floor of the broker harness's latency scenario (lat_q0): the least a broker on
// net.Socket can do. It answers CONNECT, SUBSCRIBE and PINGREQ, and forwards every QoS 0
// PUBLISH as it is to every subscriber at once (no topic matching, no sessions, no limits).
// Not a broker: a yardstick. Run it in the harness beside myqttd and Mosquitto:
//   ../shared/bench/bench-brokers.sh mosquitto=@mosquitto \
//     myqttd='exec node apps/myqttd/dist/cli.js --host 127.0.0.1 --port $PORT --storage memory' \
//     nodefloor='exec node apps/myqttd/bench/node-floor.mjs'      (SCENARIOS=lat_q0)
import { createServer } from "node:net";

const CONNACK = Buffer.from([0x20, 2, 0, 0]);
const PINGRESP = Buffer.from([0xd0, 0]);
const subscribers = new Set();

/**
 * Calls `onPacket(type, start, bodyStart, end)` for each whole packet in `buf`; returns where
 * the first incomplete one starts.
 */
function frames(buf, onPacket) {
  let offset = 0;
  while (offset < buf.length) {
    let length = 0;
    let multiplier = 1;
    let i = offset + 1;
    let byte = 0x80;
    while (byte & 0x80) {
      if (i >= buf.length) return offset;
      byte = buf[i++];
      length += (byte & 0x7f) * multiplier;
      multiplier *= 128;
    }
    if (i + length > buf.length) return offset;
    onPacket(buf[offset] >> 4, offset, i, i + length);
    offset = i + length;
  }
  return offset;
}

const server = createServer({ noDelay: true }, (socket) => {
  let rest = null;
  socket.on("data", (chunk) => {
    const buf = rest === null ? chunk : Buffer.concat([rest, chunk]);
    const publishes = [];
    const used = frames(buf, (type, start, body, end) => {
      if (type === 1) socket.write(CONNACK);
      else if (type === 8) {
        subscribers.add(socket);
        socket.write(Buffer.from([0x90, 3, buf[body], buf[body + 1], 0]));
      } else if (type === 3) publishes.push(buf.subarray(start, end));
      else if (type === 12) socket.write(PINGRESP);
      else if (type === 14) socket.end();
    });
    rest = used < buf.length ? buf.subarray(used) : null;
    if (publishes.length === 0) return;
    const data = publishes.length === 1 ? publishes[0] : Buffer.concat(publishes);
    for (const subscriber of subscribers) subscriber.write(data);
  });
  socket.on("close", () => subscribers.delete(socket));
  socket.on("error", () => {});
});
server.listen(Number(process.env.PORT ?? 1883), "127.0.0.1");

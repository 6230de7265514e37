// A neutral subscriber in its own process: counts PUBLISH packets with a raw socket, so the
// benchmark process's CPU time is the client library's alone. Driven over IPC.
import { connect as tcpConnect } from "node:net";
import { Decoder, encode, PacketType } from "@myqtt/codec";

const [port, topic] = [Number(process.argv[2]), process.argv[3]];
const socket = tcpConnect(port, "127.0.0.1");
socket.setNoDelay(true);
let count = 0;
let target = Number.POSITIVE_INFINITY;
const decoder = new Decoder((p) => {
  if (p.type === PacketType.SUBACK) process.send("ready");
  else if (p.type === PacketType.PUBLISH) {
    count++;
    if (p.qos === 1) socket.write(encode({ type: PacketType.PUBACK, packetId: p.packetId }));
    if (count === target) process.send("done");
  }
});
socket.on("data", (d) => decoder.push(d));
socket.on("connect", () => {
  socket.write(
    encode({
      type: PacketType.CONNECT,
      protocolVersion: 4,
      clean: true,
      keepAlive: 0,
      clientId: `counter-${process.pid}`,
    }),
  );
  socket.write(
    encode({
      type: PacketType.SUBSCRIBE,
      packetId: 1,
      subscriptions: [{ topicFilter: topic, qos: 1 }],
    }),
  );
});
process.on("message", (n) => {
  target = n;
  if (count >= target) process.send("done");
});
process.on("disconnect", () => process.exit(0));

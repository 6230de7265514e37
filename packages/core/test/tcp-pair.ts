// A core server transport and a raw client socket connected to it, for the channel tests.
import { connect, type Socket } from "node:net";
import { onCleanup } from "../../../tooling/testing/cleanup.mjs";
import { listenTcp, type Transport, type TransportListener } from "../src/index.js";

/** Listens on a free port, connects a raw socket, and returns both ends (closed after the test). */
export async function tcpPair(): Promise<{
  server: Transport;
  client: Socket;
  listener: TransportListener;
}> {
  let accepted: (t: Transport) => void = () => {};
  const got = new Promise<Transport>((r) => {
    accepted = r;
  });
  const listener = await listenTcp("127.0.0.1", 0, (t) => accepted(t));
  onCleanup(() => listener.close());
  const client = connect(listener.port, "127.0.0.1");
  onCleanup(() => client.destroy());
  const server = await got;
  onCleanup(() => server.destroy());
  return { server, client, listener };
}

import type { TLSSocket } from "node:tls";
import { readTlsPeer, SocketTransport, type TlsPeer } from "@myqtt/core";
import { toTlsError } from "./errors.js";

function onTlsSocketError(this: TLSSocket & { myqttTls?: TlsTransport }, error: Error): void {
  const transport = this.myqttTls;
  // Runs after SocketTransport's own listener: the close reason becomes a TlsError when it is
  // one (a TLS 1.3 server refuses a client certificate only after the client's handshake ended).
  if (transport !== undefined) transport.error = toTlsError(error, transport.peerName) as Error;
}

/**
 * A Transport over an established TLS connection: the TCP one (a TLSSocket is a net.Socket)
 * plus what the handshake learned, through tlsPeer().
 */
export class TlsTransport extends SocketTransport {
  declare readonly socket: TLSSocket;
  /** The name errors are reported with: the SNI name, else the peer's address. */
  readonly peerName: string;
  private readonly peer: TlsPeer;

  constructor(socket: TLSSocket, serverName: string | null) {
    super(socket, { serverName, tls: true });
    // Packets are batched above (one write per batch): Nagle would only add latency.
    socket.setNoDelay(true);
    this.peerName = serverName ?? socket.remoteAddress ?? "the peer";
    // Kept: the socket forgets its peer once closed.
    this.peer = readTlsPeer(socket);
    (socket as TLSSocket & { myqttTls?: TlsTransport }).myqttTls = this;
    socket.on("error", onTlsSocketError);
  }

  /** The peer as verified during the handshake (authorized, its certificate, the protocol). */
  tlsPeer(): TlsPeer {
    return this.peer;
  }
}

import { type IncomingMessage, type ServerResponse, STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";

function ignore(): void {}

/**
 * Refuses an upgrade request with a plain HTTP answer and closes its socket. The socket has no
 * error listener any more once http handed it over as an upgrade: one is added first, so a peer
 * that resets the connection meanwhile cannot crash the process.
 */
export function refuseUpgrade(socket: Duplex, status: number): void {
  socket.on("error", ignore);
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const text = STATUS_CODES[status] ?? "Error";
  socket.once("finish", () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\n` +
      `Content-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
  );
}

/** Answers a plain HTTP request (not an upgrade) with `status` and a one-line text. */
export function answer(
  response: ServerResponse<IncomingMessage>,
  status: number,
  headers: Record<string, string> = {},
): void {
  const text = `${STATUS_CODES[status] ?? "Error"}\n`;
  response.writeHead(status, {
    "Content-Type": "text/plain",
    "Content-Length": String(Buffer.byteLength(text)),
    ...headers,
  });
  response.end(text);
}

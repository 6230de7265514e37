import { decodeUtf8, type PublishPacket, type PublishProperties, type QoS } from "@myqtt/codec";

let lastMsgId = 0;

/**
 * An application message as a handler sees it (MyQtt's MyQttMsg): built from a received
 * PUBLISH, on a client or on a server.
 */
export class Msg {
  /** Unique in the process; not the packet id. */
  readonly id: number;
  readonly type = "PUBLISH" as const;
  readonly topic: string;
  /** The application payload (bytes). */
  readonly payload: Uint8Array;
  readonly qos: QoS;
  readonly dup: boolean;
  readonly retain: boolean;
  /** The packet id it arrived with (0 at QoS 0). */
  readonly packetId: number;
  /** MQTT 5.0 properties (an empty object on 3.1.1). */
  readonly properties: PublishProperties;
  private text: string | undefined;

  constructor(packet: PublishPacket) {
    this.id = ++lastMsgId;
    this.topic = packet.topic;
    this.payload = packet.payload;
    this.qos = packet.qos;
    this.dup = packet.dup;
    this.retain = packet.retain;
    this.packetId = packet.packetId ?? 0;
    this.properties = packet.properties ?? {};
  }

  /** The payload as text (UTF-8; ill-formed bytes become U+FFFD). */
  get content(): string {
    this.text ??= decodeUtf8(this.payload);
    return this.text;
  }

  /** The payload size in bytes. */
  get size(): number {
    return this.payload.length;
  }
}

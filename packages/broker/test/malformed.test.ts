// Malformed packets after a valid CONNECT: the offending client gets a DISCONNECT with the right
// reason code (5.0) or just the close (3.1.1), a log line says why, and nobody else notices.
import { PacketType } from "@myqtt/codec";
import { describe, expect, it } from "vitest";
import { RawClient, sleep, startBroker, until } from "./helpers.js";
import {
  Control,
  expectClosed,
  expectLog,
  expectRejected,
  expectServed,
  frame,
  props,
  rawConnected,
  str,
  type Version,
  varint,
} from "./negative-helpers.js";

const MALFORMED = 0x81;
const PROTOCOL_ERROR = 0x82;
const TOPIC_NAME_INVALID = 0x90;
const TOPIC_ALIAS_INVALID = 0x94;

interface Case {
  name: string;
  versions: readonly Version[];
  bytes: (v: Version) => number[];
  /** The 5.0 DISCONNECT reason code. */
  code: number;
  /** What the broker's warning must say. */
  log: RegExp;
}

const BOTH = [4, 5] as const;
const V4 = [4] as const;
const V5 = [5] as const;

/** A QoS 0 PUBLISH with raw topic bytes and 5.0 properties. */
const publish0 = (v: Version, topic: number[], properties: number[] = []): number[] =>
  frame(0x30, [...topic, ...props(v, properties), 0x78]);

const cases: Case[] = [
  {
    name: "SUBSCRIBE with fixed header flags 0 (must be 0010)",
    versions: BOTH,
    bytes: (v) => frame(0x80, [0, 1, ...props(v), ...str("a/b"), 1]),
    code: MALFORMED,
    log: /fixed header flags 0x0 are reserved/,
  },
  {
    name: "UNSUBSCRIBE with fixed header flags 0",
    versions: BOTH,
    bytes: (v) => frame(0xa0, [0, 1, ...props(v), ...str("a/b")]),
    code: MALFORMED,
    log: /fixed header flags 0x0 are reserved/,
  },
  {
    name: "PUBREL with fixed header flags 0",
    versions: BOTH,
    bytes: () => frame(0x60, [0, 1]),
    code: MALFORMED,
    log: /fixed header flags 0x0 are reserved/,
  },
  {
    name: "PINGREQ with fixed header flags 1",
    versions: BOTH,
    bytes: () => frame(0xc1, []),
    code: MALFORMED,
    log: /fixed header flags 0x1 are reserved/,
  },
  {
    name: "PUBLISH with QoS 3",
    versions: BOTH,
    bytes: (v) => frame(0x36, [...str("a/b"), 0, 1, ...props(v), 0x78]),
    code: MALFORMED,
    log: /QoS 3/,
  },
  {
    name: "DUP set on a QoS 0 PUBLISH",
    versions: BOTH,
    bytes: (v) => frame(0x38, [...str("a/b"), ...props(v), 0x78]),
    code: MALFORMED,
    log: /DUP set on a QoS 0/,
  },
  {
    name: "remaining length with a fifth byte",
    versions: BOTH,
    bytes: () => [0x30, 0xff, 0xff, 0xff, 0xff, 0x01],
    code: MALFORMED,
    log: /remaining length longer than 4 bytes/,
  },
  {
    name: "ill-formed UTF-8 in a topic (C3 28)",
    versions: BOTH,
    bytes: (v) => publish0(v, str([0x61, 0xc3, 0x28])),
    code: MALFORMED,
    log: /ill-formed UTF-8/,
  },
  {
    name: "a UTF-16 surrogate encoded in UTF-8 in a topic (ED A0 80)",
    versions: BOTH,
    bytes: (v) => publish0(v, str([0x61, 0xed, 0xa0, 0x80])),
    code: MALFORMED,
    log: /ill-formed UTF-8/,
  },
  {
    name: "an overlong UTF-8 encoding of '/' in a topic (C0 AF)",
    versions: BOTH,
    bytes: (v) => publish0(v, str([0x61, 0xc0, 0xaf, 0x62])),
    code: MALFORMED,
    log: /ill-formed UTF-8/,
  },
  {
    name: "U+0000 in a topic",
    versions: BOTH,
    bytes: (v) => publish0(v, str([0x61, 0x00, 0x62])),
    code: MALFORMED,
    log: /U\+0000/,
  },
  {
    name: "'+' wildcard in a PUBLISH topic",
    versions: BOTH,
    bytes: (v) => publish0(v, str("a/+/c")),
    code: TOPIC_NAME_INVALID,
    log: /wildcards are not allowed in a topic name/,
  },
  {
    name: "'#' wildcard in a PUBLISH topic",
    versions: BOTH,
    bytes: (v) => publish0(v, str("a/#")),
    code: TOPIC_NAME_INVALID,
    log: /wildcards are not allowed in a topic name/,
  },
  {
    name: "packet type 0",
    versions: BOTH,
    bytes: () => [0x00, 0x00],
    code: MALFORMED,
    log: /packet type 0 is reserved/,
  },
  {
    name: "AUTH (type 15) on 3.1.1",
    versions: V4,
    bytes: () => [0xf0, 0x00],
    code: MALFORMED,
    log: /packet type 15 is reserved/,
  },
  {
    name: "truncated PUBLISH: the topic length runs past the body",
    versions: BOTH,
    bytes: () => frame(0x30, [0, 10, 0x61, 0x62]),
    code: MALFORMED,
    log: /packet ends before its fields do/,
  },
  {
    name: "truncated PUBACK: one byte of packet id",
    versions: BOTH,
    bytes: () => frame(0x40, [0x01]),
    code: MALFORMED,
    log: /packet ends before its fields do/,
  },
  {
    name: "truncated SUBSCRIBE: the options byte is missing",
    versions: BOTH,
    bytes: (v) => frame(0x82, [0, 1, ...props(v), ...str("a/b")]),
    code: MALFORMED,
    log: /packet ends before its fields do/,
  },
  {
    name: "QoS 1 PUBLISH with packet id 0",
    versions: BOTH,
    bytes: (v) => frame(0x32, [...str("a/b"), 0, 0, ...props(v), 0x78]),
    code: PROTOCOL_ERROR,
    log: /packet identifier 0/,
  },
  {
    name: "SUBSCRIBE with packet id 0",
    versions: BOTH,
    bytes: (v) => frame(0x82, [0, 0, ...props(v), ...str("a/b"), 1]),
    code: PROTOCOL_ERROR,
    log: /packet identifier 0/,
  },
  {
    name: "SUBSCRIBE with no topic filter",
    versions: BOTH,
    bytes: (v) => frame(0x82, [0, 1, ...props(v)]),
    code: PROTOCOL_ERROR,
    log: /SUBSCRIBE without a topic filter/,
  },
  {
    name: "UNSUBSCRIBE with no topic filter",
    versions: BOTH,
    bytes: (v) => frame(0xa2, [0, 1, ...props(v)]),
    code: PROTOCOL_ERROR,
    log: /UNSUBSCRIBE without a topic filter/,
  },
  {
    name: "PINGREQ with a body",
    versions: BOTH,
    bytes: () => frame(0xc0, [0]),
    code: MALFORMED,
    log: /unexpected bytes at the end/,
  },
  {
    name: "SUBSCRIBE requesting QoS 3 (3.1.1)",
    versions: V4,
    bytes: () => frame(0x82, [0, 1, ...str("a/b"), 3]),
    code: MALFORMED,
    log: /QoS 3/,
  },
  {
    name: "SUBSCRIBE with reserved bits in the requested QoS byte (3.1.1)",
    versions: V4,
    bytes: () => frame(0x82, [0, 1, ...str("a/b"), 0x04]),
    code: MALFORMED,
    log: /reserved bits/,
  },
  {
    name: "a property that appears twice (Payload Format Indicator)",
    versions: V5,
    bytes: (v) => publish0(v, str("a/b"), [0x01, 0x00, 0x01, 0x00]),
    code: PROTOCOL_ERROR,
    log: /appears more than once/,
  },
  {
    name: "an unknown property identifier (0x05)",
    versions: V5,
    bytes: (v) => publish0(v, str("a/b"), [0x05, 0x00]),
    code: MALFORMED,
    log: /unknown property identifier 0x5/,
  },
  {
    name: "a property not allowed in PUBLISH (Session Expiry Interval)",
    versions: V5,
    bytes: (v) => publish0(v, str("a/b"), [0x11, 0, 0, 0, 1]),
    code: MALFORMED,
    log: /sessionExpiryInterval is not allowed here/,
  },
  {
    name: "a property length that runs past the packet",
    versions: V5,
    bytes: () => frame(0x30, [...str("a/b"), 10, 0x01, 0x00]),
    code: MALFORMED,
    log: /property length exceeds the packet/,
  },
  {
    name: "Payload Format Indicator 2",
    versions: V5,
    bytes: (v) => publish0(v, str("a/b"), [0x01, 0x02]),
    code: PROTOCOL_ERROR,
    log: /payloadFormatIndicator must be 0 or 1/,
  },
  {
    name: "Topic Alias 0",
    versions: V5,
    bytes: (v) => publish0(v, str("a/b"), [0x23, 0, 0]),
    code: TOPIC_ALIAS_INVALID,
    log: /topicAlias must not be 0/,
  },
  {
    name: "a non-minimal remaining length (80 00)",
    versions: V5,
    bytes: () => [0xc0, 0x80, 0x00],
    code: MALFORMED,
    log: /remaining length not minimally encoded/,
  },
  {
    name: "a non-minimal remaining length on a PUBLISH (87 00)",
    versions: V5,
    bytes: () => [0x30, 0x87, 0x00, ...str("a/b"), 0, 0x78],
    code: MALFORMED,
    log: /remaining length not minimally encoded/,
  },
  {
    name: "a non-minimal property length (80 00)",
    versions: V5,
    bytes: () => frame(0x30, [...str("a/b"), 0x80, 0x00, 0x78]),
    code: MALFORMED,
    log: /not minimally encoded/,
  },
  {
    name: "SUBSCRIBE with the reserved subscription option bits set",
    versions: V5,
    bytes: (v) => frame(0x82, [0, 1, ...props(v), ...str("a/b"), 0xc1]),
    code: MALFORMED,
    log: /reserved bits of the subscription options/,
  },
  {
    name: "SUBSCRIBE with Maximum QoS 3",
    versions: V5,
    bytes: (v) => frame(0x82, [0, 1, ...props(v), ...str("a/b"), 0x03]),
    code: PROTOCOL_ERROR,
    log: /Maximum QoS 3/,
  },
  {
    name: "SUBSCRIBE with Retain Handling 3",
    versions: V5,
    bytes: (v) => frame(0x82, [0, 1, ...props(v), ...str("a/b"), 0x31]),
    code: PROTOCOL_ERROR,
    log: /retain handling 3/,
  },
  {
    name: "No Local on a shared subscription",
    versions: V5,
    bytes: (v) => frame(0x82, [0, 1, ...props(v), ...str("$share/g/a"), 0x05]),
    code: PROTOCOL_ERROR,
    log: /no local on a shared subscription/,
  },
  {
    name: "Subscription Identifier 0",
    versions: V5,
    bytes: (v) => frame(0x82, [0, 1, ...props(v, [0x0b, 0x00]), ...str("a/b"), 1]),
    code: PROTOCOL_ERROR,
    log: /subscriptionIdentifier must not be 0/,
  },
  {
    name: "PUBACK with a reason code PUBACK cannot carry (0x05)",
    versions: V5,
    bytes: () => frame(0x40, [0, 1, 0x05]),
    code: PROTOCOL_ERROR,
    log: /reason code 0x5 is not allowed here/,
  },
];

const runs = cases.flatMap((c) => c.versions.map((v) => ({ ...c, v })));

describe("malformed packets after CONNECT", () => {
  it.each(runs)("$name (MQTT level $v)", async ({ v, bytes, code, log }) => {
    const broker = await startBroker();
    const control = await Control.start(broker);
    const raw = await rawConnected(broker, v);
    raw.write(bytes(v));
    await expectRejected(raw, v, code);
    // Decoding errors are the client's fault: a warning saying what was wrong.
    expectLog(broker, new RegExp(`^warning broker/conn .*bad packet .*${log.source}`));
    await control.check();
  });

  it.each(BOTH)(
    "refuses a PUBLISH whose fixed header announces a fifth length byte one byte at a time (level %i)",
    async (v) => {
      const broker = await startBroker();
      const control = await Control.start(broker);
      const raw = await rawConnected(broker, v);
      // The header straddles TCP segments: the decoder must still count its bytes.
      for (const b of [0x30, 0xff, 0xff, 0xff, 0xff]) {
        raw.write([b]);
        await sleep(10);
      }
      raw.write([0x01]);
      await expectRejected(raw, v, MALFORMED);
      expectLog(broker, /bad packet .*remaining length longer than 4 bytes/);
      await control.check();
    },
  );

  it.each(BOTH)(
    "handles the packets that came before the bad one in the same segment (level %i)",
    async (v) => {
      const broker = await startBroker();
      const control = await Control.start(broker);
      const got = await control.collect("before/bad");
      const raw = await rawConnected(broker, v);
      const good = frame(0x32, [...str("before/bad"), 0, 7, ...props(v), ...Buffer.from("kept")]);
      raw.write([...good, 0x00, 0x00]);
      expect(await raw.next()).toMatchObject({ type: PacketType.PUBACK, packetId: 7 });
      await expectRejected(raw, v, MALFORMED);
      await until(() => got.length === 1, 2000, "the message sent before the bad packet");
      expect(got).toEqual([["before/bad", "kept"]]);
      await control.check();
    },
  );

  it.each(BOTH)(
    "publishes the will of a client closed for a malformed packet (level %i)",
    async (v) => {
      const broker = await startBroker();
      const control = await Control.start(broker);
      const wills = await control.collect("will/malformed");
      const raw = await rawConnected(broker, v, {
        will: { topic: "will/malformed", payload: Buffer.from("gone"), qos: 1, retain: false },
      });
      raw.write(frame(0x36, [...str("a"), 0, 1, ...props(v)]));
      await expectRejected(raw, v, MALFORMED);
      await until(() => wills.length === 1, 2000, "the will");
      expect(wills).toEqual([["will/malformed", "gone"]]);
      await control.check();
    },
  );

  it.each(BOTH)(
    "keeps the persistent session of a client closed for a malformed packet: nothing is lost (level %i)",
    async (v) => {
      const broker = await startBroker();
      const control = await Control.start(broker);
      const clientId = `persistent-${v}`;
      const persistent = v === 5 ? { properties: { sessionExpiryInterval: 60 } } : {};
      const raw = await rawConnected(broker, v, { clientId, clean: false, ...persistent });
      raw.send({
        type: PacketType.SUBSCRIBE,
        packetId: 1,
        subscriptions: [{ topicFilter: "kept/+", qos: 1 }],
      });
      expect(await raw.next()).toMatchObject({ type: PacketType.SUBACK, reasonCodes: [1] });
      raw.write([0x00, 0x00]);
      await expectRejected(raw, v, MALFORMED);

      await control.publish("kept/1", "one");
      await control.publish("kept/2", "two");

      const again = await RawClient.connect(broker, v);
      expect(await again.connect({ clientId, clean: false, ...persistent })).toMatchObject({
        type: PacketType.CONNACK,
        reasonCode: 0,
        sessionPresent: true,
      });
      const first = await again.next();
      const second = await again.next();
      expect([first, second]).toMatchObject([
        { type: PacketType.PUBLISH, topic: "kept/1", qos: 1 },
        { type: PacketType.PUBLISH, topic: "kept/2", qos: 1 },
      ]);
      await control.check();
    },
  );

  it.each(BOTH)("forgets a peer that sends half a packet and hangs up (level %i)", async (v) => {
    const broker = await startBroker();
    const control = await Control.start(broker);
    const raw = await rawConnected(broker, v);
    // A PUBLISH announcing 200 bytes, of which 5 arrive.
    raw.write([0x30, ...varint(200), 0, 3, 0x61, 0x2f, 0x62]);
    await sleep(20);
    raw.destroy();
    await expectClosed(raw);
    await until(() => broker.listener.connections === 1, 2000, "the broker to drop the peer");
    await control.check();
  });

  it("keeps serving a 5.0 connection after a PUBACK that stops after its packet id (valid)", async () => {
    // A 5.0 PUBACK may stop after its packet id (v5 3.4.2.1): not malformed, just short.
    const broker = await startBroker();
    const control = await Control.start(broker);
    const raw = await rawConnected(broker, 5);
    raw.write(frame(0x40, [0, 9]));
    await expectServed(raw);
    await control.check();
  });
});

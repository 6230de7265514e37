// C suite, part 1: test_00 … test_00_d. The context, and the library's building blocks the C
// tests call directly: remaining-length codec, UTF-8 validation, mkdir -p, topic matching.
// myqtt does not re-export the codec functions, so they come from @myqtt/codec.
import { mkdir, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import {
  decodeRemainingLength,
  encodeRemainingLength,
  isValidTopicFilter,
  isValidUtf8,
  match,
} from "@myqtt/codec";
import * as myqtt from "myqtt";
import { check, equal } from "../../check.js";
import { test } from "../../registry.js";

test("c", "test_00", async () => {
  const ctx = new myqtt.Ctx();
  check(await ctx.init(), "ctx.init() failed");
  check(ctx.isReady, "ctx not ready after init()");
  await ctx.exit();
  check(ctx.isExiting, "ctx still running after exit()");
});

/** Value → its remaining-length bytes (C test_00_a). */
const REMAINING_LENGTHS: [number, number[]][] = [
  [89, [0x59]],
  [127, [0x7f]],
  [128, [0x80, 0x01]],
  [139, [0x8b, 0x01]],
  [16_217, [0xd9, 0x7e]],
  [16_383, [0xff, 0x7f]],
  [127_364, [0x84, 0xe3, 0x07]],
  [2_097_151, [0xff, 0xff, 0x7f]],
  [5_678_945, [0xe1, 0xce, 0xda, 0x02]],
  [268_435_455, [0xff, 0xff, 0xff, 0x7f]],
];

test("c", "test_00_a", async (env) => {
  for (const [value, bytes] of REMAINING_LENGTHS) {
    const encoded = [...encodeRemainingLength(value)];
    equal(encoded, bytes, `encoding of ${value}`);
    // Decoded from a buffer with something after it, as the C decodes inside a packet.
    const decoded = decodeRemainingLength(Uint8Array.from([...bytes, 0x00, 0xff]));
    equal(decoded, { value, length: bytes.length }, `decoding of ${value}`);
    env.log(`${value} -> ${bytes.map((b) => b.toString(16).padStart(2, "0")).join(" ")}`);
  }
  // 1268435455 needs a fifth byte: MyQtt's encoder fails, ours throws.
  let encodedTooLarge = true;
  try {
    encodeRemainingLength(1_268_435_455);
  } catch {
    encodedTooLarge = false;
  }
  check(!encodedTooLarge, "encoding 1268435455 should fail (more than 4 bytes)");
  // A fifth continuation byte: MyQtt returns -1, ours throws MalformedPacketError.
  let decodedTooLong: unknown = null;
  try {
    decodedTooLong = decodeRemainingLength(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
  } catch {
    decodedTooLong = -1;
  }
  equal(decodedTooLong, -1, "decoding FF FF FF FF FF");
});

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);

/** Well-formed strings the validator must accept (the cases the C test enforces). */
const VALID_UTF8: Uint8Array[] = [
  utf8("aspl"),
  utf8("Camión"),
  utf8("Здраво"),
  utf8("Hæ það"),
  utf8(
    "The following five sequences should also be rejected like malformed           |" +
      "UTF-8 sequences and should not be treated like the ASCII NUL                  |" +
      "character.                                                                    |",
  ),
  utf8("Esto es una prueba para detectar que todo es correcto!"),
];

/**
 * Markus Kuhn's malformed sequences, as the C test lists them (sections 3 to 5). The C only
 * logs these (its check returns early whenever the validator accepts a string); MQTT requires
 * well-formed UTF-8 [MQTT-1.5.3-1], so the port enforces their rejection.
 */
function malformedUtf8(): [string, Uint8Array][] {
  const out: [string, Uint8Array][] = [];
  const add = (label: string, b: Uint8Array): void => void out.push([label, b]);
  // 3.1 unexpected continuation bytes
  add("80", bytes(0x80));
  add("bf", bytes(0xbf));
  const cont = [0x80, 0xbf, 0x80, 0xbf, 0x80, 0xbf, 0x80];
  for (let n = 2; n <= cont.length; n++) add(`${n} continuation bytes`, bytes(...cont.slice(0, n)));
  add("80..bf", bytes(...Array.from({ length: 64 }, (_, i) => 0x80 + i)));
  // 3.2 lonely start bytes, each followed by a space
  const lonely = (from: number, to: number): Uint8Array =>
    bytes(...Array.from({ length: to - from + 1 }, (_, i) => [from + i, 0x20]).flat());
  add("lonely c0..df", lonely(0xc0, 0xdf));
  add("lonely e0..ef", lonely(0xe0, 0xef));
  add("lonely f0..f7", lonely(0xf0, 0xf7));
  add("lonely f8..fb", lonely(0xf8, 0xfb));
  add("lonely fc..fd", lonely(0xfc, 0xfd));
  // 3.3 sequences with their last continuation byte missing, and 3.4 all of them together
  const truncated = [
    [0xc0],
    [0xe0, 0x80],
    [0xf0, 0x80, 0x80],
    [0xf8, 0x80, 0x80, 0x80],
    [0xfc, 0x80, 0x80, 0x80, 0x80],
    [0xdf],
    [0xef, 0xbf],
    [0xf7, 0xbf, 0xbf],
    [0xfb, 0xbf, 0xbf, 0xbf],
    [0xfd, 0xbf, 0xbf, 0xbf, 0xbf],
  ];
  for (const t of truncated) add(`truncated ${hex(t)}`, bytes(...t));
  add("truncated, concatenated", bytes(...truncated.flat()));
  // 3.5 impossible bytes
  add("fe", bytes(0xfe));
  add("ff", bytes(0xff));
  add("fe fe ff ff", bytes(0xfe, 0xfe, 0xff, 0xff));
  // 4.1 overlong '/', 4.2 maximum overlong forms, 4.3 overlong NUL
  const overlong = [
    [0xc0, 0xaf],
    [0xe0, 0x80, 0xaf],
    [0xf0, 0x80, 0x80, 0xaf],
    [0xf8, 0x80, 0x80, 0x80, 0xaf],
    [0xfc, 0x80, 0x80, 0x80, 0x80, 0xaf],
    [0xc1, 0xbf],
    [0xe0, 0x9f, 0xbf],
    [0xf0, 0x8f, 0xbf, 0xbf],
    [0xf8, 0x87, 0xbf, 0xbf, 0xbf],
    [0xfc, 0x83, 0xbf, 0xbf, 0xbf, 0xbf],
    [0xc0, 0x80],
    [0xe0, 0x80, 0x80],
    [0xf0, 0x80, 0x80, 0x80],
    [0xf8, 0x80, 0x80, 0x80, 0x80],
    [0xfc, 0x80, 0x80, 0x80, 0x80, 0x80],
  ];
  for (const o of overlong) add(`overlong ${hex(o)}`, bytes(...o));
  // 5.1 single and 5.2 paired UTF-16 surrogates
  const high = [
    [0xed, 0xa0, 0x80],
    [0xed, 0xad, 0xbf],
    [0xed, 0xae, 0x80],
    [0xed, 0xaf, 0xbf],
  ];
  const low = [
    [0xed, 0xb0, 0x80],
    [0xed, 0xbe, 0x80],
    [0xed, 0xbf, 0xbf],
  ];
  for (const s of [...high, ...low]) add(`surrogate ${hex(s)}`, bytes(...s));
  for (const h of [high[0]!, high[3]!, high[1]!, high[2]!])
    for (const l of [low[0]!, low[2]!])
      add(`surrogate pair ${hex([...h, ...l])}`, bytes(...h, ...l));
  return out;
}

function hex(b: readonly number[]): string {
  return b.map((x) => x.toString(16).padStart(2, "0")).join(" ");
}

test("c", "test_00_b", async (env) => {
  for (const s of VALID_UTF8) {
    check(isValidUtf8(s), `valid UTF-8 rejected: ${new TextDecoder().decode(s)}`);
  }
  for (const [label, b] of malformedUtf8()) {
    check(!isValidUtf8(b), `malformed UTF-8 accepted: ${label}`);
  }
  // 5.3 noncharacters U+FFFE and U+FFFF: MyQtt accepts them and the C test only logs them;
  // MQTT 3.1.1 says a receiver MAY reject them, so either answer passes.
  for (const [label, b] of [
    ["U+FFFE", bytes(0xef, 0xbf, 0xbe)],
    ["U+FFFF", bytes(0xef, 0xbf, 0xbf)],
  ] as const) {
    env.log(`${label}: ${isValidUtf8(b) ? "accepted" : "rejected"}`);
  }
});

async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

// myqtt_mkdir (mkdir -p) is not part of our API: Node's mkdir({ recursive: true }) is what
// the library uses. The port asserts the same outcomes in a scratch directory: nested paths
// are created, existing parents (and an existing directory) are fine, absolute and relative
// paths work, the mode is 0700.
test("c", "test_00_c", async () => {
  const scratch = await mkdtemp(join(tmpdir(), "myqtt-test-00-c-"));
  try {
    const base = join(scratch, "test-00-c"); // absolute
    const mkdirP = async (path: string): Promise<void> => {
      await mkdir(path, { recursive: true, mode: 0o700 });
      check(await isDir(path), `expected a directory at ${path}`);
    };
    // 1: a nested path from nothing
    await mkdirP(join(base, "prueba/value/test"));
    equal((await stat(join(base, "prueba"))).mode & 0o777, 0o700, "mode of a created directory");
    // 2: a single level
    await rm(base, { recursive: true, force: true });
    await mkdirP(base);
    // 3: one level below it
    await rm(base, { recursive: true, force: true });
    await mkdirP(join(base, "prueba"));
    // 4: a nested path under parents that exist, given as a relative path this time
    await mkdirP(relative(process.cwd(), join(base, "prueba/value/test")));
    // and once more: an existing directory is not an error
    await mkdirP(join(base, "prueba/value/test"));
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
});

/** [filter, topic, matches] (C test_00_d; the rules of reference §3.4 and MQTT 4.7). */
const MATCHES: [string, string, boolean][] = [
  ["sport/tennis/player1/#", "sport/tennis/player1", true],
  ["sport/tennis/player1/#", "sport/tennis/player1/ranking", true],
  ["sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true],
  ["sport/#", "sport", true],
  ["#", "sport", true],
  ["#", "sport/tennis/player1", true],
  ["#", "/finance", true],
  ["#", "/", true],
  ["sport/tennis/#", "sport/tennis", true],
  ["sport/tennis/+", "sport/tennis/player1", true],
  ["sport/tennis/+", "sport/tennis/player2", true],
  ["sport/tennis/+", "sport/tennis/player1/ranking", false],
  ["sport/+", "sport/", true],
  ["sport/+", "sport", false],
  ["+", "sport", true],
  ["+/tennis/#", "sport/tennis", true],
  ["sport/+/player1", "sport/tennis/player1", true],
  ["+/+", "/finance", true],
  ["/+", "/finance", true],
  ["+", "/finance", false],
  ["a/+/topic", "a//topic", true],
  ["finance", "/finance", false],
  ["/finance", "finance", false],
  ["SPORT/#", "sport/tennis", false],
  ["sport/Tennis", "sport/tennis", false],
  ["sport/tennis/player1", "sport/tennis/player1/ranking", false],
  ["sport/tennis", "sport/tennis/", false],
  ["#", "$SYS/broker", false],
  ["#", "$SYS/", false],
  ["+/monitor/Clients", "$SYS/monitor/Clients", false],
  ["+/bar", "$SYS/bar", false],
  ["$SYS/#", "$SYS/", true],
  ["$SYS/#", "$SYS", true],
  ["$SYS/#", "$SYS/broker/clients", true],
  ["$SYS/monitor/+", "$SYS/monitor/Clients", true],
  ["$SYS/bar", "$SYS/bar", true],
  ["$BOB/bar", "$SYS/bar", false],
  ["foo/bar", "foo/bar", true],
  ["foo/bar", "foo", false],
  ["foo/+", "foo/bar/baz", false],
  ["foo/+/baz", "foo/bar/baz", true],
  ["foo/+/baz", "foo/bar/bar", false],
  ["foo/+/#", "foo/bar/baz", true],
  ["foo/+/#", "fo2/bar/baz", false],
  ["A/B/+/#", "A/B/B/C", true],
  ["/#", "/foo/bar", true],
  ["/#", "foo/bar", false],
  ["test/6/#", "test/3", false],
  ["foo/#", "foo/$bar", true],
  ["foo/+/baz", "foo/$bar/baz", true],
  ["foo//bar", "foo//bar", true],
  ["foo/+/+/baz", "foo///baz", true],
  ["foo/bar/+", "foo/bar/", true],
];

const VALID_FILTERS = ["#", "+", "sport/tennis/#", "+/tennis/#", "sport/+/player1", "/+", "+/+"];
const INVALID_FILTERS = ["sport/tennis#", "sport/tennis/#/ranking", "sport+"];

test("c", "test_00_d", async () => {
  const wrong: string[] = [];
  for (const [filter, topic, expected] of MATCHES) {
    if (match(filter, topic) !== expected)
      wrong.push(`"${filter}" ${expected ? "should" : "should not"} match "${topic}"`);
  }
  for (const f of VALID_FILTERS) if (!isValidTopicFilter(f)) wrong.push(`"${f}" should be valid`);
  for (const f of INVALID_FILTERS)
    if (isValidTopicFilter(f)) wrong.push(`"${f}" should be invalid`);
  check(wrong.length === 0, wrong.join("; "));
});

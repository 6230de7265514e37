// Payloads and topics of test_17c / test_17d (C and Python). MyQtt's fixtures are literal text
// (define_big_mesg, the file message-test-17-d.txt); what the tests check is that the bytes come
// back unchanged at these sizes, so the port generates deterministic text of the same sizes
// instead of shipping copies of the files.

/** The phrase MyQtt's big test messages repeat. */
const PHRASE =
  "This is a retained message for future subscribers..kljsdg 90sdgrokj234 jklgo823u4t kjlwegklj23 jklegr5hu8 klj235 23rglkjry346...";

/**
 * `size` bytes of ASCII text: `label` first (so that a message of one case can never pass for
 * another's), then the phrase repeated with a running counter, cut at `size`.
 */
export function bigMessage(label: string, size: number): Buffer {
  const parts: string[] = [`[${label}] `];
  let length = parts[0]!.length;
  for (let i = 1; length < size; i++) {
    const piece = `${i}) ${PHRASE} `;
    parts.push(piece);
    length += piece.length;
  }
  return Buffer.from(parts.join("").slice(0, size), "latin1");
}

/** Sizes of the C and Python test_17c payloads (define_big_mesg, define_big_mesg_2, the 4 MB one). */
export const SIZE_8K = 8_220;
export const SIZE_64K = 65_798;
export const SIZE_4M = 4_145_274;

/** "this/is/a/test/this-is-a-very-long-topic" repeated `times` times, as the Python suite builds them. */
function longTopic(times: number): string {
  return "this/is/a/test/this-is-a-very-long-topic".repeat(times);
}

/** The topics of test_17c by length: 14, 80, 320 and 640 characters. */
export const TOPIC_14 = "this/is/a/test";
export const TOPIC_80 = longTopic(2);
export const TOPIC_320 = longTopic(8);
export const TOPIC_640 = longTopic(16);

/** One test_17c case: a topic and a payload size. */
export interface BigCase {
  label: string;
  topic: string;
  size: number;
}

/** The Python suite's seven cases (17-c ... 17-c6). */
export const PY_17C_CASES: readonly BigCase[] = [
  { label: "17-c", topic: TOPIC_14, size: SIZE_8K },
  { label: "17-c1", topic: TOPIC_80, size: SIZE_8K },
  { label: "17-c2", topic: TOPIC_320, size: SIZE_8K },
  { label: "17-c3", topic: TOPIC_640, size: SIZE_8K },
  { label: "17-c4", topic: TOPIC_14, size: SIZE_64K },
  { label: "17-c5", topic: TOPIC_80, size: SIZE_64K },
  { label: "17-c6", topic: TOPIC_640, size: SIZE_64K },
];

/** The C suite's eight: the Python seven plus the 4 MB message (§5.2). */
export const C_17C_CASES: readonly BigCase[] = [
  ...PY_17C_CASES,
  { label: "17-c7", topic: TOPIC_640, size: SIZE_4M },
];

/** Size of MyQtt's test/message-test-17-d.txt. */
export const MESSAGE_17D_SIZE = 21_439;

/**
 * Stands in for test/message-test-17-d.txt: 21,439 bytes of numbered text lines (the original
 * is a text file of that size; its words do not matter, the test compares bytes).
 */
export function message17d(): Buffer {
  const lines: string[] = [];
  let length = 0;
  for (let i = 1; length < MESSAGE_17D_SIZE; i++) {
    const line = `${String(i).padStart(4, "0")}: product ${i}, reply of test_17d, QoS 2 request/reply check\n`;
    lines.push(line);
    length += line.length;
  }
  return Buffer.from(lines.join("").slice(0, MESSAGE_17D_SIZE), "latin1");
}

// The list of regression tests, in the order they run, and what each one is given.

/** Where the regression listener is, and where its certificates are. */
export interface TestEnv {
  host: string;
  /** Plain MQTT (C suite 1909). */
  port: number;
  /** TLS with the default certificate and SNI handlers (1910). */
  tlsPort: number;
  /** Mutual TLS: a client certificate signed by root.pem is required (1911). */
  mtlsPort: number;
  /** WebSocket (1918) and secure WebSocket (1919). */
  wsPort: number;
  wssPort: number;
  /** The directory of the certificates the listener generated (root.pem, client.pem, ...). */
  certs: string;
  /** Where this client keeps its own storage (MyQtt: .myqtt-regression-client). */
  storagePath: string;
  /** Prints a detail line under the running test (shown with --verbose). */
  log(message: string): void;
}

/** A test: resolves when it passed, throws (an Error saying what differed) when it failed. */
export type TestFn = (env: TestEnv) => Promise<void>;

export interface RegisteredTest {
  name: string;
  suite: "c" | "python";
  fn: TestFn;
}

export const tests: RegisteredTest[] = [];

/** Adds a test of the C suite (§5.2) or the Python suite (§5.4), in running order. */
export function test(suite: "c" | "python", name: string, fn: TestFn): void {
  if (tests.some((t) => t.suite === suite && t.name === name))
    throw new Error(`test ${suite}/${name} registered twice`);
  tests.push({ name, suite, fn });
}

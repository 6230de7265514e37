// myqtt-regression-client: runs the ported MyQtt regression suites against the regression
// listener. One line per test; the last line is "N passed, M failed"; exit status 1 on any failure.
import { parseArgs } from "node:util";
import "./tests/index.js";
import { type TestEnv, tests } from "./registry.js";

const USAGE = `Usage: myqtt-regression-client [options]

  --host H          the regression listener's host (default localhost)
  --port P          plain MQTT port (default 1909)
  --tls-port P      TLS port (default 1910)
  --mtls-port P     mutual TLS port (default 1911)
  --ws-port P       WebSocket port (default 1918)
  --wss-port P      secure WebSocket port (default 1919)
  --certs DIR       the listener's certificates (default .myqtt-regression-certs)
  --suite S         c, python or all (default all)
  --run-test=NAME   run only this test (C names such as test_02a, or python:test_04)
  --verbose         print each test's detail lines
  --help
`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      host: { type: "string", default: "localhost" },
      port: { type: "string", default: "1909" },
      "tls-port": { type: "string", default: "1910" },
      "mtls-port": { type: "string", default: "1911" },
      "ws-port": { type: "string", default: "1918" },
      "wss-port": { type: "string", default: "1919" },
      certs: { type: "string", default: ".myqtt-regression-certs" },
      suite: { type: "string", default: "all" },
      "run-test": { type: "string" },
      verbose: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const details: string[] = [];
  const env: TestEnv = {
    host: values.host,
    port: Number(values.port),
    tlsPort: Number(values["tls-port"]),
    mtlsPort: Number(values["mtls-port"]),
    wsPort: Number(values["ws-port"]),
    wssPort: Number(values["wss-port"]),
    certs: values.certs,
    storagePath: ".myqtt-regression-client",
    log: (message) => details.push(message),
  };
  const only = values["run-test"];
  const selected = tests.filter((t) => {
    if (values.suite !== "all" && t.suite !== values.suite) return false;
    if (only === undefined) return true;
    return only === t.name || only === `${t.suite}:${t.name}`;
  });
  if (selected.length === 0) {
    process.stderr.write(`no test matches ${only ?? values.suite}\n`);
    return 2;
  }
  let passed = 0;
  let failed = 0;
  for (const t of selected) {
    details.length = 0;
    const started = performance.now();
    const label = t.suite === "c" ? t.name : `python:${t.name}`;
    try {
      await t.fn(env);
      passed++;
      process.stdout.write(`${label}: ok (${Math.round(performance.now() - started)} ms)\n`);
    } catch (error) {
      failed++;
      const why = error instanceof Error ? error.message : String(error);
      process.stdout.write(`${label}: FAILED: ${why}\n`);
    }
    if (values.verbose) for (const line of details) process.stdout.write(`    ${line}\n`);
  }
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  return failed === 0 ? 0 : 1;
}

main().then(
  (status) => process.exit(status),
  (error: unknown) => {
    process.stderr.write(
      `${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(2);
  },
);

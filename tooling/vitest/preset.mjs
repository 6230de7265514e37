// Shared vitest settings: unit tests beside the code (src/**/*.test.ts), integration tests in test/.
/** @type {import('vitest/config').ViteUserConfig['test']} */
export const testPreset = {
  include: ["src/**/*.test.ts", "test/**/*.test.ts"],
  environment: "node",
  testTimeout: 20_000,
  hookTimeout: 20_000,
  // A test that is skipped is not a pass: CI fails on any skip where services are required.
  passWithNoTests: false,
  reporters: ["default"],
};

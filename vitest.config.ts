import { defineConfig } from "vitest/config";

// Every package's tests run from the root: `pnpm test:only` (or `pnpm test` for the full set-up + run).
export default defineConfig({
  test: {
    include: ["events/**/*.test.ts", "services/*/src/**/*.test.ts", "services/*/test/**/*.test.ts", "tests/**/*.test.ts", "bin/**/*.test.ts", "bench/**/*.test.ts", "ui/src/**/*.test.ts", "ui/demo/**/*.test.ts", "ui/launch/**/*.test.ts"],
    exclude: ["**/node_modules/**"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // 2-core machines: real servers and browsers per test file; keep the pool small.
    maxWorkers: 2,
    reporters: ["default"],
  },
});

#!/usr/bin/env node
// Entry of the `troupe` command: runs the TypeScript CLI through tsx's loader (no build step).
let register;
try {
  ({ register } = await import("tsx/esm/api"));
} catch (e) {
  if (e?.code !== "ERR_MODULE_NOT_FOUND") throw e;
  // A fresh clone: the dependencies are not installed yet.
  console.error("troupe: dependencies are missing — run `bash scripts/setup.sh` first (`bash scripts/setup.sh --worker` on a worker-only machine)");
  process.exit(1);
}
register();
const { main } = await import("./cli.ts");
const code = await main(process.argv.slice(2));
process.exitCode = code;
// A command that has returned is done: if something it opened still holds the event loop (a bug —
// say, a connection left reconnecting to a NATS that is gone), say so and exit rather than hang.
const EXIT_GRACE_MS = 10_000;
setTimeout(() => {
  const open = process.getActiveResourcesInfo().join(", ");
  console.error(`troupe ${process.argv[2] ?? ""}: still running ${EXIT_GRACE_MS / 1000} s after it finished (open: ${open}); exiting with code ${code}`);
  process.exit(code);
}, EXIT_GRACE_MS).unref();

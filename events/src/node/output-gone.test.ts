import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * A terminal that hangs up makes every later write to stdout fail with EIO
 * (just before its SIGHUP); a closed pipe with EPIPE. A service stopping on that
 * SIGHUP must not die of its own "shutting down" log line. Run in a child, whose
 * stdout can be failed on purpose.
 */

const INDEX = fileURLToPath(new URL("./index.ts", import.meta.url));

function inChild(code: string) {
  return spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], { encoding: "utf8", timeout: 30_000, cwd: fileURLToPath(new URL("../../..", import.meta.url)) });
}

describe("output that has gone", () => {
  it("a service's logger drops its lines after an EIO instead of throwing", () => {
    const r = inChild(`
      import { createLogger } from ${JSON.stringify(INDEX)};
      const log = createLogger("t");
      let stream;
      for (let o = log; o && !stream; o = Object.getPrototypeOf(o)) {
        const sym = Object.getOwnPropertySymbols(o).find((s) => s.description === "pino.stream");
        if (sym) stream = o[sym];
      }
      stream.emit("error", Object.assign(new Error("write EIO"), { code: "EIO" }));
      log.info("shutting down");
      console.error("still alive");
    `);
    expect(r.stderr).toContain("still alive");
    expect(r.status, r.stderr).toBe(0);
  });

  it("stdoutClosed resolves on EIO as on EPIPE, and the process lives on", () => {
    const r = inChild(`
      import { stdoutClosed } from ${JSON.stringify(INDEX)};
      const gone = stdoutClosed().then(() => console.error("stdout gone"));
      process.stdout.emit("error", Object.assign(new Error("write EIO"), { code: "EIO" }));
      await gone;
      console.error("still alive");
    `);
    expect(r.stderr).toContain("stdout gone\nstill alive");
    expect(r.status, r.stderr).toBe(0);
  });
});

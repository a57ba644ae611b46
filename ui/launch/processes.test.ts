import { spawn } from "node:child_process";
import { processAlive, waitFor } from "@troupe/tests/harness";
import { describe, expect, it } from "vitest";
import { setprivPath } from "@troupe/events/node";

describe("startProcess", () => {
  it("stops a child (own process group) when its parent is killed with SIGKILL", async () => {
    expect(setprivPath(), "util-linux's setpriv (in Debian's base system) sets the parent-death signal").toBeDefined();
    const parent = spawn(process.execPath, ["--import", "tsx", "ui/launch/parent-death.fixture.ts"], { cwd: new URL("../..", import.meta.url).pathname, stdio: ["ignore", "pipe", "inherit"] });
    const childPid = await new Promise<number>((resolve, reject) => {
      let out = "";
      parent.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /child (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      parent.on("exit", (c) => reject(new Error(`fixture exited with ${c}: ${out}`)));
    });
    expect(processAlive(childPid)).toBe(true);
    parent.kill("SIGKILL");
    await waitFor(`child ${childPid} to stop after its parent's death`, () => !processAlive(childPid), 10_000, 20);
  }, 30_000);
});

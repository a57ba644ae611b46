import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { waitFor } from "@troupe/tests/harness";
import { withBuildLock } from "./build.ts";

/** The dashboard build lock across processes: a lock left by a killed build must not hold the next start for minutes. */

const root = mkdtempSync(join(tmpdir(), "troupe-build-lock-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A pid that certainly belongs to no running process: one that just exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(r.stdout);
}

describe("withBuildLock", () => {
  it("takes over at once a lock whose holder is gone, and says so", async () => {
    const lock = join(root, "dead");
    mkdirSync(lock);
    const pid = deadPid();
    writeFileSync(join(lock, "pid"), String(pid));
    const lines: string[] = [];
    const t0 = Date.now();
    expect(await withBuildLock(async () => "built", { lockDir: lock, log: (l) => lines.push(l) })).toBe("built");
    expect(Date.now() - t0).toBeLessThan(10_000); // at once, not after a wait (loaded-machine stalls aside)
    expect(lines.join("\n")).toContain(`took over the dashboard build lock ${lock} (its holder pid ${pid} is gone)`);
    expect(existsSync(lock)).toBe(false);
  });

  it("waits for a live holder, says for whom, and goes on when it lets go", async () => {
    const lock = join(root, "live");
    mkdirSync(lock);
    writeFileSync(join(lock, "pid"), String(process.pid)); // alive: this very process
    const lines: string[] = [];
    let ran = false;
    const waiting = withBuildLock(async () => {
      ran = true;
    }, { lockDir: lock, log: (l) => lines.push(l) });
    await waitFor("the wait announced", () => lines.length > 0);
    expect(ran).toBe(false);
    expect(lines).toEqual([`troupe ui: waiting for the dashboard build that pid ${process.pid} runs (lock ${lock})`]);
    rmSync(lock, { recursive: true, force: true });
    await waiting;
    expect(ran).toBe(true);
  });
});

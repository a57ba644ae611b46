import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { currentTarget } from "../src/db-file.ts";
import { generateEvents, publishAll } from "./generate.ts";
import { dumpTables, rebuildInto, tempDbPath } from "./helpers.ts";

/**
 * `troupe replay` killed mid-rebuild (kill -9: no handler runs) and run again: the read models are the
 * old complete ones until a rebuild finishes, and what the killed one left (its unfinished generation,
 * the generation it was to delete after its swap, its writer thread's bundle) is gone once another
 * rebuild ran. Found by the rebuild crash soak (test/rebuild-soak.ts).
 */

const ROOT = resolve(fileURLToPath(new URL("../../..", import.meta.url)));
let nats: TestNats;
/** The children's temporary directory, where the writer thread's bundle goes. */
const tmp = mkdtempSync(join(tmpdir(), "troupe-replay-tmp-"));

beforeAll(async () => {
  nats = await startTestNats({ init: true });
  const js = { master: (await nats.js("master")).js, worker: (await nats.js("worker")).js };
  await publishAll(generateEvents({ workers: 20, events: 20_000, startMs: Date.now() - 3600_000, stepMs: 100, seed: 3, idPrefix: "k" }), js);
}, 120_000);
afterAll(async () => {
  await nats?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

function replay(path: string) {
  return troupe(["replay", "--db", path, "--rebuild-batch", "200"]);
}

function troupe(args: string[]) {
  const child = spawn(process.execPath, ["bin/troupe.mjs", ...args], {
    cwd: ROOT, env: { ...process.env, ...nats.env(), TMPDIR: tmp, TROUPE_LOG_LEVEL: "info" }, stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) => child.on("exit", (code, signal) => r({ code, signal })));
  return { child, exited, output: () => out };
}

const generations = (path: string) => readdirSync(dirname(path)).filter((f) => f.startsWith(`${basename(path)}.g-`) && !/-(wal|shm)$/.test(f)).sort();
const bundles = () => readdirSync(tmp).filter((f) => f.startsWith("troupe-build-thread-"));

describe("troupe replay killed with kill -9", () => {
  it("mid-rebuild: the old read models stay, and the next replay removes the unfinished generation and the thread's bundle", async () => {
    const path = tempDbPath();
    const first = await replay(path).exited;
    expect(first.code).toBe(0);
    const before = dumpTables(path);
    const current = basename(currentTarget(path) as string);

    const r = replay(path);
    // Its generation exists once the writer thread opened it: the rebuild is under way.
    await waitFor("the replay to start writing its generation", () => generations(path).length === 2 || r.child.exitCode !== null, 60_000);
    r.child.kill("SIGKILL");
    expect((await r.exited).signal).toBe("SIGKILL");
    expect(generations(path)).toHaveLength(2); // what it left: the proof that this kill landed mid-rebuild
    expect(basename(currentTarget(path) as string)).toBe(current);
    expect(dumpTables(path)).toEqual(before);
    expect(bundles()).toHaveLength(1);

    const again = replay(path);
    const done = await again.exited;
    expect(done.code, again.output()).toBe(0);
    expect(generations(path)).toEqual([basename(currentTarget(path) as string)]);
    expect(bundles()).toEqual([]);
    const fresh = tempDbPath();
    const nc = await nats.connect("projector");
    await rebuildInto(nc, fresh);
    expect(dumpTables(path)).toEqual(dumpTables(fresh));
  }, 180_000);

  it("after its swap, before it deleted the previous generation: the next replay deletes it", async () => {
    const path = tempDbPath();
    expect((await replay(path).exited).code).toBe(0);
    const r = replay(path);
    // The previous file is deleted 5 s after the swap (readers move over meanwhile): kill it in between.
    await waitFor("the replay to swap its file in", () => /rebuild swapped in/.test(r.output()) || r.child.exitCode !== null, 60_000);
    r.child.kill("SIGKILL");
    expect((await r.exited).signal).toBe("SIGKILL");
    expect(generations(path)).toHaveLength(2);

    const again = replay(path);
    expect((await again.exited).code, again.output()).toBe(0);
    expect(generations(path)).toEqual([basename(currentTarget(path) as string)]);
  }, 180_000);

  it("mid-rebuild, then the projector starts without a rebuild: it removes what the replay left", async () => {
    const path = tempDbPath();
    expect((await replay(path).exited).code).toBe(0);
    const r = replay(path);
    await waitFor("the replay to start writing its generation", () => generations(path).length === 2 || r.child.exitCode !== null, 60_000);
    r.child.kill("SIGKILL");
    expect((await r.exited).signal).toBe("SIGKILL");
    expect(generations(path)).toHaveLength(2);
    expect(bundles()).toHaveLength(1);

    const p = troupe(["projector", "--db", path, "--port", "0"]);
    try {
      await waitFor("the projector to run", () => /projector running/.test(p.output()) || p.child.exitCode !== null, 60_000);
      expect(p.child.exitCode, p.output()).toBeNull();
      expect(generations(path)).toEqual([basename(currentTarget(path) as string)]);
      expect(bundles()).toEqual([]);
    } finally {
      p.child.kill("SIGTERM");
      expect((await p.exited).code, p.output()).toBe(0);
    }
  }, 180_000);

  it("mid-rebuild beside a running projector: the projector removes what the replay left within its sweep", async () => {
    const path = tempDbPath();
    const p = troupe(["projector", "--db", path, "--port", "0"]);
    try {
      await waitFor("the projector to run", () => /projector running/.test(p.output()) || p.child.exitCode !== null, 60_000);
      const r = replay(path);
      await waitFor("the replay to start writing its generation", () => generations(path).length === 2 || r.child.exitCode !== null, 60_000);
      r.child.kill("SIGKILL");
      expect((await r.exited).signal).toBe("SIGKILL");
      expect(generations(path)).toHaveLength(2);
      expect(bundles()).toHaveLength(1);
      // Swept every 10 s; nothing else starts or rebuilds here.
      await waitFor("the running projector to remove the replay's generation and bundle", () => generations(path).length === 1 && bundles().length === 0, 30_000, 200);
      expect(generations(path)).toEqual([basename(currentTarget(path) as string)]);
    } finally {
      p.child.kill("SIGTERM");
      expect((await p.exited).code, p.output()).toBe(0);
    }
  }, 180_000);
});

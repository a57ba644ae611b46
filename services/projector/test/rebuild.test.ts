import { spawn } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import Database from "better-sqlite3";
import { fileURLToPath } from "node:url";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateEvents, publishAll } from "./generate.ts";
import { acquireWriterLock } from "../src/writer-lock.ts";
import { dumpTables, expectSameAsFreshRebuild, hb, openReadModels, rebuildInto, registration, Script, spec, startLive, streamHeads, tempDbPath, waitCaughtUp } from "./helpers.ts";

/** `troupe replay` builds a fresh file and swaps it in while readers and the live projector keep working. */

const ROOT = resolve(fileURLToPath(new URL("../../..", import.meta.url)));
let nats: TestNats;
let js: { master: import("@nats-io/jetstream").JetStreamClient; worker: import("@nats-io/jetstream").JetStreamClient };

beforeAll(async () => {
  nats = await startTestNats({ init: true });
  js = { master: (await nats.js("master")).js, worker: (await nats.js("worker")).js };
});
afterAll(async () => {
  await nats?.stop();
});

function replay(path: string, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // With arguments, as a user runs it (no TROUPE_LOG_LEVEL).
  const env: NodeJS.ProcessEnv = { ...process.env, ...nats.env(), ...(args.length ? {} : { TROUPE_LOG_LEVEL: "warn" }) };
  if (args.length) delete env.TROUPE_LOG_LEVEL;
  const child = spawn(process.execPath, ["bin/troupe.mjs", "replay", "--db", path, "--rebuild-batch", "100", ...args], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((r) => child.on("exit", (code) => r({ code, stdout, stderr })));
}

describe("rebuild (troupe replay)", () => {
  it("refuses a --db that is not a read-model database, leaving it and what a symlink points at untouched", async () => {
    const dir = dirname(tempDbPath());
    const text = join(dir, "notes.txt");
    writeFileSync(text, "precious");
    const target = join(dir, "target.txt");
    writeFileSync(target, "precious too");
    const link = join(dir, "link.sqlite");
    symlinkSync(target, link);
    const other = join(dir, "other-app.sqlite");
    const db = new Database(other);
    db.exec("create table users (name text); insert into users values ('alice')");
    db.close();
    for (const [path, why] of [[text, /not an SQLite database/], [link, /is a symlink to .*target\.txt, not to one of troupe's generation files/], [other, /SQLite database of something else/]] as const) {
      const r = await replay(path);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`refusing to use ${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} as the read-model database`));
      expect(r.stderr).toMatch(why);
    }
    expect(readFileSync(text, "utf8")).toBe("precious");
    expect(readFileSync(target, "utf8")).toBe("precious too");
    expect(readlinkSync(link)).toBe(target);
    const again = new Database(other, { readonly: true });
    expect(again.prepare("select name from users").all()).toEqual([{ name: "alice" }]);
    again.close();
    expect(readdirSync(dir).filter((f) => /\.(g|swap)-/.test(f))).toEqual([]);
  }, 120_000);

  it("no reader sees a half-built database: every read during the rebuild sees the old or the new state", async () => {
    await publishAll(generateEvents({ workers: 30, events: 4000, startMs: Date.now() - 3600_000, stepMs: 100, seed: 7, idPrefix: "r" }), js);
    const path = tempDbPath();
    const nc = await nats.connect("projector");
    await rebuildInto(nc, path);
    const rm = openReadModels(path);
    const oldTotal = rm.stats().jobs.total;
    // Events the old file does not have: the new file will have more jobs.
    await publishAll(generateEvents({ workers: 5, events: 1500, startMs: Date.now() - 600_000, stepMs: 100, seed: 8, idPrefix: "s" }), js);
    const newTotal = (await (async () => {
      const p = tempDbPath();
      await rebuildInto(nc, p);
      const r = openReadModels(p);
      const n = r.stats().jobs.total;
      r.close();
      return n;
    })());
    expect(newTotal).toBeGreaterThan(oldTotal);

    const seen = new Map<number, number>();
    let reading = true;
    const reader = (async () => {
      while (reading) {
        // A consistent snapshot: the counts, and a full page of the newest jobs, all from one file.
        const total = rm.stats().jobs.total;
        const page = rm.listJobs({ limit: 20 });
        expect(page.jobs.length).toBe(20);
        seen.set(total, (seen.get(total) ?? 0) + 1);
        await new Promise((r) => setImmediate(r));
      }
    })();
    const r = await replay(path);
    reading = false;
    await reader;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/events\/s/);
    expect(r.stderr).toMatch(/ETA/);
    expect([...seen.keys()].sort((a, b) => a - b)).toEqual([oldTotal, newTotal].filter((n) => seen.has(n)));
    expect(seen.get(oldTotal)).toBeGreaterThan(0);
    expect(seen.get(newTotal)).toBeGreaterThan(0);
    // The reader moved to the new file after the swap.
    expect(rm.stats().jobs.total).toBe(newTotal);
    rm.close();
    // The previous generation is deleted after the grace period; only the current one is left.
    const gens = readdirSync(dirname(path)).filter((f) => f.startsWith(`${basename(path)}.g-`) && !/-(wal|shm)$/.test(f));
    expect(gens).toHaveLength(1);
  }, 120_000);

  it("a running live projector follows the swap and keeps folding into the new file", async () => {
    const path = tempDbPath();
    const nc = await nats.connect("projector");
    const { live } = await startLive(nc, path, { durable: "projector-swap" });
    const rm = openReadModels(path);
    try {
      await waitCaughtUp(nats, rm, 60_000);
      const r = await replay(path);
      expect(r.code, r.stderr).toBe(0);
      const s = new Script(js, Date.now() - 1000);
      await s.emit("job.submitted", { jobId: "after-swap", spec });
      await waitFor("the job submitted after the swap", () => rm.getJob("after-swap"), 20_000);
      await waitCaughtUp(nats, rm, 20_000);
    } finally {
      await live.stop();
      rm.close();
    }
    await expectSameAsFreshRebuild(nc, path);
  }, 120_000);

  it("replay --until refuses read models a projector writes (it would fold the rest on top: the replay changed nothing, silently), and says what it swapped in, without JSON log lines", async () => {
    const path = tempDbPath();
    const nc = await nats.connect("projector");
    await rebuildInto(nc, path);
    const lock = acquireWriterLock(path);
    try {
      const refused = await replay(path, "--until", "1");
      expect(refused.code, refused.stderr).toBe(2);
      expect(refused.stderr).toMatch(/--until: another projector writes .* \(pid \d+ on .*\), which would fold the rest of the log on top of the past state: stop it first, or write the past state elsewhere with --db <file>/);
    } finally {
      lock.release();
    }
    const done = await replay(path, "--until", "1");
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toMatch(new RegExp(`^swapped in ${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: \\d+ events \\(\\d+ skipped\\) in [\\d.]+ s, \\d+/s, up to 1\\n$`));
    // The progress bar alone on stderr: no pino JSON between its lines.
    expect(done.stderr).not.toMatch(/"level"/);
    expect(done.stderr).toMatch(/rebuild .*100\.0%/);
  }, 120_000);

  it("reports its progress as complete when --until ends a stream before its last message (the bar ended at '35.1% 100/285')", async () => {
    const nc = await nats.connect("projector");
    const s = new Script(js, Date.now() - 1000);
    await s.emit("worker.registered", registration("w-until"));
    const bound = (await streamHeads(nats)).TROUPE_EVENTS as number;
    // Heartbeats stored after the bound's event (by the stream's own clock: a later publish): past the time bound.
    await new Promise((r) => setTimeout(r, 20));
    for (let i = 0; i < 5; i++) await s.emit("worker.heartbeat", hb("w-until", 10, 100));
    // The bound is before the events stream's end (at its end, it bounds nothing).
    await s.emit("worker.deregistered", { workerId: "w-until", instanceId: "w-until-i1" });
    const seen: { done: number; total: number }[] = [];
    await rebuildInto(nc, tempDbPath(), { until: { seq: bound }, onProgress: (p) => seen.push({ done: p.done, total: p.total }) });
    const last = seen.at(-1)!;
    expect(last.done).toBeGreaterThan(0);
    expect(last.total).toBe(last.done);
  });

  it("a live projector follows a swap that no event follows, folding again what the new file lacks", async () => {
    // A replay fixes its targets (each stream's last sequence) when it starts; events that come after are in the live
    // file and not in the rebuilt one. Found by the rebuild crash soak: when nothing more came after the swap, the live
    // projector never looked (it checked the file only before applying a batch) and the read models lacked them for good.
    const path = tempDbPath();
    const nc = await nats.connect("projector");
    const { live } = await startLive(nc, path, { durable: "projector-quiet" });
    const rm = openReadModels(path);
    try {
      const s = new Script(js, Date.now() - 1000);
      await s.emit("job.submitted", { jobId: "quiet-0", spec });
      for (const id of ["quiet-1", "quiet-2", "quiet-3"]) await s.emit("job.submitted", { jobId: id, spec });
      await waitCaughtUp(nats, rm, 60_000);
      expect(rm.getJob("quiet-3")).not.toBeNull();
      // What a replay whose targets were fixed just before the three submissions swaps in.
      const head = (await streamHeads(nats)).TROUPE_EVENTS as number;
      const r = await rebuildInto(nc, path, { until: { seq: head - 3 } });
      expect(r.checkpoints.TROUPE_EVENTS).toBe(head - 3);
      await waitFor("the live projector to fold the three submissions into the swapped-in file", () => rm.getJob("quiet-3"), 20_000);
      await waitCaughtUp(nats, rm, 20_000);
    } finally {
      await live.stop();
      rm.close();
    }
    await expectSameAsFreshRebuild(nc, path);
  }, 120_000);
});

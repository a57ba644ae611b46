import { spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateEvents, publishAll } from "./generate.ts";
import { dumpTables, openReadModels, rebuildInto, streamHeads, tempDbPath, waitCaughtUp } from "./helpers.ts";

/**
 * Exactly once across crashes: the projector runs as a child process
 * (`troupe projector`) and is killed with SIGKILL again and again while it
 * folds a backlog and new events keep arriving. After a final clean run the
 * database must equal a from-scratch rebuild, row for row.
 */

const ROOT = resolve(fileURLToPath(new URL("../../..", import.meta.url)));
let nats: TestNats;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  nats = await startTestNats({ init: true });
});
afterAll(async () => {
  for (const c of children) c.kill("SIGKILL");
  await nats?.stop();
});

function startProjector(path: string): { child: ChildProcess; exited: Promise<number | null>; output: () => string } {
  const child = spawn(process.execPath, ["bin/troupe.mjs", "projector", "--db", path, "--port", "0", "--batch", "200"], {
    cwd: ROOT, env: { ...process.env, ...nats.env(), TROUPE_LOG_LEVEL: "warn" }, stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  // Logs go to stdout (pino), crashes to stderr: keep both for a failure's message.
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => (children.delete(child), r(code))));
  return { child, exited, output: () => out };
}

/** Waits for `done`, failing at once if the child exits first, and names what the child printed either way. */
async function waitWhileRunning(what: string, p: ReturnType<typeof startProjector>, done: () => boolean, timeoutMs: number): Promise<void> {
  const t0 = Date.now();
  const exitedFirst = p.exited.then((code) => {
    throw new Error(`projector exited (code ${code}) after ${Date.now() - t0} ms before ${what}`);
  });
  try {
    await Promise.race([waitFor(what, done, timeoutMs, 5), exitedFirst]);
  } catch (e) {
    throw new Error(`${(e as Error).message}; projector output so far: ${p.output().slice(-2000) || "(none)"}`, { cause: e });
  } finally {
    exitedFirst.catch(() => {}); // the child is killed on purpose afterwards
  }
}

describe("projector under kill -9", () => {
  it("after repeated kill -9 mid-run and a restart, the database equals a rebuild row for row", async () => {
    const master = await nats.js("master");
    const worker = await nats.js("worker");
    const hbConn = await nats.js("worker");
    const js = { master: master.js, worker: worker.js, heartbeats: hbConn.js };
    const startMs = Date.now() - 3600_000;
    await publishAll(generateEvents({ workers: 40, events: 6000, startMs, stepMs: 200, seed: 1, idPrefix: "a" }), js);
    // More events keep arriving while the projector crashes and restarts.
    const more = publishAll(generateEvents({ workers: 20, events: 6000, startMs: startMs + 1_200_000, stepMs: 200, seed: 2, idPrefix: "b" }), js, 50);

    const path = tempDbPath();
    const rm = openReadModels(path);
    const applied = () => rm.projectorLag()?.checkpoints.TROUPE_EVENTS ?? 0;
    let killedBehind = 0;
    const kills = 6;
    for (let i = 0; i < kills; i++) {
      const p = startProjector(path);
      const before = applied();
      // Kill as soon as this run has committed something, while it is busy folding.
      // 60 s: a start (Node, tsx, the NATS connection) at the end of a loaded suite run took over 30 s once.
      await waitWhileRunning(`run ${i} to commit a batch`, p, () => applied() > before, 60_000);
      const head = (await streamHeads(nats)).TROUPE_EVENTS ?? 0;
      p.child.kill("SIGKILL");
      expect(await p.exited).toBe(null);
      if (applied() < head) killedBehind++;
    }
    expect(killedBehind).toBeGreaterThanOrEqual(kills - 1);
    await more;

    const last = startProjector(path);
    await waitCaughtUp(nats, rm, 60_000);
    last.child.kill("SIGTERM");
    expect(await last.exited).toBe(0);
    rm.close();

    const fresh = tempDbPath();
    const nc = await nats.connect("projector");
    await rebuildInto(nc, fresh);
    const live = dumpTables(path);
    const rebuilt = dumpTables(fresh);
    expect((live.jobs as unknown[]).length).toBeGreaterThan(1000);
    for (const table of Object.keys(rebuilt)) expect({ table, rows: live[table] }).toEqual({ table, rows: rebuilt[table] });
  }, 480_000);
});

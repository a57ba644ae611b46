import { spawn } from "node:child_process";
import { copyFileSync, readdirSync, readlinkSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { currentTarget, newGenerationPath, swapIn } from "../src/db-file.ts";
import { openReadModels, rebuildInto, Script, spec, tempDbPath } from "./helpers.ts";

/**
 * Two swaps close together (two replays, or a replay beside `projector --rebuild`): the live projector must end up
 * writing the file the path points at. It used to take the identity of the path *after* opening the file, so a swap
 * landing while it opened the first new file made it believe it had the second: it folded into a file nobody reads
 * (and that its rebuild deleted), and the read models stopped moving for good.
 */

const ROOT = resolve(fileURLToPath(new URL("../../..", import.meta.url)));
let nats: TestNats;

beforeAll(async () => {
  nats = await startTestNats({ init: true });
});
afterAll(async () => {
  await nats?.stop();
});

/** The files a process has open. */
const openFiles = (pid: number) => readdirSync(`/proc/${pid}/fd`).map((fd) => {
  try {
    return readlinkSync(`/proc/${pid}/fd/${fd}`);
  } catch {
    return ""; // closed meanwhile
  }
});

describe("live projector and swaps in quick succession", () => {
  it("follows the second swap that lands while it opens the file of the first", async () => {
    const js = { master: (await nats.js("master")).js, worker: (await nats.js("worker")).js };
    const s = new Script(js, Date.now() - 60_000);
    await s.emit("job.submitted", { jobId: "before", spec });
    const nc = await nats.connect("projector");
    const path = tempDbPath();
    await rebuildInto(nc, path);
    // Two complete generations beside the path, copies of a rebuild made elsewhere.
    const side = tempDbPath();
    await rebuildInto(nc, side);
    const [b, c] = [newGenerationPath(path), newGenerationPath(path)];
    copyFileSync(currentTarget(side) as string, b);
    copyFileSync(currentTarget(side) as string, c);

    const child = spawn(process.execPath, ["bin/troupe.mjs", "projector", "--db", path, "--port", "0"], {
      cwd: ROOT, env: { ...process.env, ...nats.env(), TROUPE_LOG_LEVEL: "info" }, stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    const rm = openReadModels(path);
    try {
      await waitFor("the projector to run", () => /projector running/.test(out) || child.exitCode !== null, 60_000);
      // An exclusive lock on B keeps the projector inside its open of B: its first read waits for it (busy timeout, 5 s).
      // In a rollback journal, since WAL readers do not wait for writers; the projector switches B back to WAL.
      const lockB = new Database(b);
      lockB.pragma("journal_mode = DELETE");
      lockB.exec("BEGIN EXCLUSIVE");
      try {
        swapIn(path, b);
        await waitFor("the projector to open B", () => openFiles(child.pid as number).includes(b), 4000, 5);
        swapIn(path, c);
      } finally {
        lockB.exec("ROLLBACK");
        lockB.close();
      }
      await s.emit("job.submitted", { jobId: "after", spec });
      await waitFor(`the job submitted after both swaps in the file the path points at (projector: ${out.slice(-400)})`, () => rm.getJob("after"), 20_000);
      expect(child.exitCode).toBeNull();
    } finally {
      rm.close();
      child.kill("SIGTERM");
      expect({ code: await exited, out: out.slice(-1500) }).toEqual({ code: 0, out: expect.any(String) });
    }
  }, 120_000);
});

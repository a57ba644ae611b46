import { execFileSync, spawn, spawnSync } from "node:child_process";
import { createServer } from "node:net";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { connectAs, freePort } from "@troupe/events/node";
import { processAlive, waitFor } from "../harness/index.ts";

/** `troupe up --demo` as a user runs it: one process, the whole stack, clean Ctrl-C. */

const TROUPE = fileURLToPath(new URL("../../bin/troupe.mjs", import.meta.url));
const dataDir = mkdtempSync(join(tmpdir(), "troupe-up-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe("troupe up --demo", () => {
  it("starts nats, master, projector, UI and a worker with prefixed logs, runs demo jobs, and stops everything on SIGINT", async () => {
    const [nats, ws, mon, ui, demo] = await freshPorts(5);
    // A data dir that does not exist yet, as on a first run.
    const child = spawn(process.execPath, [TROUPE, "up", "--demo", "--workers", "1", "--data-dir", join(dataDir, "first-run"), "--nats-host", "127.0.0.1",
      "--nats-port", String(nats), "--ws-port", String(ws), "--monitor-port", String(mon), "--ui-port", String(ui), "--demo-port", String(demo), "--demo-rate", "120", "--heartbeat-ms", "1000"], {
      // A shell that sourced some worker credential: the local workers must still run as their own users.
      env: { ...process.env, TROUPE_MASTER_PORT: "0", TROUPE_PROJECTOR_PORT: "0", TROUPE_NATS_WORKER_USER: "worker", TROUPE_NATS_WORKER_PASSWORD: "Not-the-password-0123" },
      stdio: ["ignore", "pipe", "pipe"],
      // Its own process group, like a shell job: Ctrl-C in a terminal signals the whole group.
      detached: true,
    });
    let out = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr.on("data", (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((res) => child.once("exit", (code) => res(code)));
    try {
      const base = `http://127.0.0.1:${ui}`;
      await waitFor("the local worker on the dashboard", async () => {
        const r = await fetch(`${base}/api/workers`).catch(() => null);
        const b = r?.ok ? ((await r.json()) as { workers: { id: string }[] }) : null;
        return b?.workers.some((w) => w.id === "wn-local-01");
      }, 180_000, 250);
      await waitFor("a demo job to finish", async () => {
        const r = await fetch(`${base}/api/jobs?status=completed&limit=1`).catch(() => null);
        return r?.ok && ((await r.json()) as { jobs: unknown[] }).jobs.length > 0;
      }, 120_000, 250);
      for (const prefix of ["[nats]", "[up]", "[master]", "[projector]", "[ui]", "[worker-1]", "[demo]"]) expect(out, prefix).toContain(prefix);
      // The local worker runs as its own NATS user, not the shared one (docs/security.md, Per-worker users).
      const conns = ((await (await fetch(`http://127.0.0.1:${mon}/connz?auth=1&limit=1000`)).json()) as { connections: { name?: string; authorized_user?: string }[] }).connections;
      expect(conns.find((c) => c.name === "troupe-worker wn-local-01")?.authorized_user).toBe("worker-wn-local-01");
      expect(out).not.toMatch(/TROUPE_NATS_WORKER_PASSWORD/);
    } catch (e) {
      child.kill("SIGINT");
      await exited;
      throw new Error(`${(e as Error).message}\n--- troupe up output (tail) ---\n${out.split("\n").slice(-60).join("\n")}`);
    }
    const pids = [...out.matchAll(/\[nats\]\s+\[(\d+)\]/g)].map((m) => Number(m[1]));
    // Ctrl-C as a terminal sends it: SIGINT to the whole foreground process group.
    process.kill(-child.pid!, "SIGINT");
    expect(await exited).toBe(0);
    expect(out).toMatch(/\[up\]\s+stopped/);
    // The workers drained and deregistered through a NATS that was still up, without being killed.
    expect(out).toMatch(/\[worker-1\].*worker stopped/);
    expect(out).not.toMatch(/not published|did not stop within/);
    // nats-server (whose pid it logs) is gone, and nothing listens on the dashboard port any more.
    for (const pid of new Set(pids)) expect(processAlive(pid), `nats-server ${pid}`).toBe(false);
    expect(await fetch(`http://127.0.0.1:${ui}/api/stats`).then(() => "up", () => "down")).toBe("down");
  }, 420_000);

  it("refuses to start when a port it needs is taken, naming the port and the flag, and starts nothing", async () => {
    const [nats, ws, mon, ui] = await freshPorts(4);
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(ui, "127.0.0.1", () => r()));
    const dir = mkdtempSync(join(tmpdir(), "troupe-up-port-"));
    try {
      const r = spawnSync(process.execPath, [TROUPE, "up", "--workers", "0", "--data-dir", dir, "--nats-host", "127.0.0.1",
        "--nats-port", String(nats), "--ws-port", String(ws), "--monitor-port", String(mon), "--ui-port", String(ui), "--master-port", "0", "--projector-port", "0"], { encoding: "utf8", timeout: 60_000 });
      expect(r.status, r.stdout + r.stderr).not.toBe(0);
      expect(r.stdout + r.stderr).toMatch(new RegExp(`dashboard port 127\\.0\\.0\\.1:${ui} is not available \\(EADDRINUSE\\).*choose another \\(--ui-port`));
      expect(r.stdout + r.stderr).not.toMatch(/starting nats-server/);
    } finally {
      taken.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses two flags naming the same port (exit 2, naming both) and starts nothing", () => {
    const r = spawnSync(process.execPath, [TROUPE, "up", "--workers", "0", "--data-dir", join(dataDir, "same-port"), "--nats-port", "18640", "--ui-port", "18640"], { encoding: "utf8", timeout: 60_000 });
    expect(r.status, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(/--nats-port and --ui-port both name port 18640: give each its own/);
    expect(r.stdout + r.stderr).not.toMatch(/starting nats-server/);
  });

  it("stops in order with exit 0 when the reader of its output went first (`troupe up | tee log`, Ctrl-C killing tee too)", async () => {
    const up = await startBareUp("troupe-up-epipe-", { keepStdout: false });
    try {
      await up.dashboard();
      const children = up.children();
      up.child.stdout.destroy(); // the reader goes: up's next line meets EPIPE
      up.child.kill("SIGTERM");
      expect(await up.exited, up.output()).toBe(0);
      expect(up.output()).not.toMatch(/EPIPE/);
      expect(children.filter(processAlive), "children left").toEqual([]);
    } finally {
      up.dispose();
    }
  }, 300_000);

  it("runs the whole stack under another subject prefix (--prefix acme) without the shared worker user: NATS permissions follow it, the local worker runs as its own user, demo jobs complete", async () => {
    const [demo] = await freshPorts(1);
    const up = await startBareUp("troupe-up-prefix-", { keepStdout: true, args: ["--prefix", "acme", "--no-shared-worker-user", "--workers", "1", "--demo", "--demo-port", String(demo), "--demo-rate", "300", "--heartbeat-ms", "1000"] });
    try {
      await up.dashboard();
      await waitFor("a demo job to complete under the prefix", async () => {
        const r = await fetch(`${up.base}/api/jobs?status=completed&limit=1`).catch(() => null);
        return r?.ok && ((await r.json()) as { jobs: unknown[] }).jobs.length > 0;
      }, 120_000, 250).catch((e: Error) => Promise.reject(new Error(`${e.message}\n--- output (tail) ---\n${up.output().slice(-3000)}`)));
      const workers = (await (await fetch(`${up.base}/api/workers`)).json()) as { workers: { id: string; status: string }[] };
      expect(workers.workers.map((w) => w.id)).toEqual(["wn-local-01"]);
      expect(up.output()).not.toMatch(/[Pp]ermissions [Vv]iolation|Authorization/);
      // Its own user (worker-users.json, rendered for the prefix), and the shared one is not in the config.
      expect((await up.connections()).find((c) => c.name === "troupe-worker wn-local-01")?.authorized_user).toBe("worker-wn-local-01");
      await expect(connectAs({ url: up.natsUrl, role: "worker", dataDir: up.dir, name: "shared" })).rejects.toThrow(/Authorization Violation/i);
      up.child.kill("SIGTERM");
      expect(await up.exited, up.output().slice(-3000)).toBe(0);
    } finally {
      up.dispose();
    }
  }, 300_000);

  it("starts a service that died on its own again (a projector killed, as on a full disk), and stops cleanly after", async () => {
    const up = await startBareUp("troupe-up-restart-", { keepStdout: true });
    try {
      await up.dashboard();
      const projector = () => up.children().find((pid) => / projector$/.test(commandLine(pid)));
      const first = await waitFor("the projector's process", projector, 30_000, 100);
      process.kill(first, "SIGKILL");
      await waitFor("the projector started again", () => {
        const now = projector();
        return now !== undefined && now !== first;
      }, 30_000, 100).catch((e: Error) => Promise.reject(new Error(`${e.message}\n--- output (tail) ---\n${up.output().slice(-3000)}`)));
      expect(up.output()).toMatch(/\[up\]\s+projector exited unexpectedly \(code \d+\); starting it again in 1 s/);
      up.child.kill("SIGTERM");
      expect(await up.exited, up.output().slice(-3000)).toBe(0);
      // Stopped by up, it is not "unexpected" and not started again.
      expect(up.output().match(/projector exited unexpectedly/g)).toHaveLength(1);
    } finally {
      up.dispose();
    }
  }, 300_000);

  it("stops the stack with exit 2 when a service refuses its settings (a too-short TROUPE_UI_TOKEN), instead of starting it again for ever", async () => {
    const up = await startBareUp("troupe-up-refused-", { keepStdout: true, env: { TROUPE_UI_TOKEN: "short" } });
    try {
      expect(await up.exited, up.output().slice(-3000)).toBe(2);
      expect(up.output()).toMatch(/TROUPE_UI_TOKEN.*at least 16 characters/);
      expect(up.output()).toMatch(/\[up\]\s+ui refused its settings \(exit 2; why is in its lines above\): starting it again would not help, so the stack stops/);
      expect(up.output()).not.toMatch(/ui exited unexpectedly/);
      expect(up.output()).toMatch(/\[up\]\s+stopped/);
    } finally {
      up.dispose();
    }
  }, 300_000);

  it("starts nats-server again when it dies (kill -9), and the services carry on through it: a job submitted after is stored and projected", async () => {
    const up = await startBareUp("troupe-up-nats-restart-", { keepStdout: true });
    try {
      await up.dashboard();
      const natsPid = () => up.children().find((pid) => /nats-server -c /.test(commandLine(pid)));
      const first = await waitFor("nats-server's process", natsPid, 30_000, 100);
      process.kill(first, "SIGKILL");
      const fail = (e: Error) => Promise.reject(new Error(`${e.message}\n--- output (tail) ---\n${up.output().slice(-3000)}`));
      await waitFor("nats-server running again", () => /\[up\]\s+nats-server is running again/.test(up.output()), 60_000, 100).catch(fail);
      expect(up.output()).toMatch(/\[up\]\s+nats-server exited unexpectedly \(code null\); starting it again in 1 s/);
      expect(natsPid()).not.toBe(first);
      // The master answers (201) and the projector stores the job: both reconnected to the new server by themselves.
      const jobId = await waitFor("a submission the master accepts", async () => {
        const r = await fetch(`${up.base}/api/jobs`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ url: "https://example.com/after-restart" }) });
        return r.status === 201 ? ((await r.json()) as { jobId: string }).jobId : undefined;
      }, 60_000, 250).catch(fail);
      await waitFor("the job in the read models", async () => (await fetch(`${up.base}/api/jobs/${jobId}`)).status === 200, 30_000, 100).catch(fail);
      up.child.kill("SIGTERM");
      expect(await up.exited, up.output().slice(-3000)).toBe(0);
      expect(up.output().match(/nats-server exited unexpectedly/g)).toHaveLength(1);
    } finally {
      up.dispose();
    }
  }, 300_000);

  it("refuses a second up on the same data dir, its ports moved (exit 2, naming the first): it started a second nats-server and master on one store", async () => {
    const up = await startBareUp("troupe-up-same-dir-", { keepStdout: true });
    try {
      await up.dashboard();
      const [nats, ws, mon, ui] = await freshPorts(4);
      const second = spawnSync(process.execPath, [TROUPE, "up", "--workers", "0", "--data-dir", up.dir, "--nats-host", "127.0.0.1", "--ws-host", "127.0.0.1",
        "--nats-port", String(nats), "--ws-port", String(ws), "--monitor-port", String(mon), "--ui-port", String(ui)], { encoding: "utf8", timeout: 60_000, env: { ...process.env, TROUPE_MASTER_PORT: "0", TROUPE_PROJECTOR_PORT: "0" } });
      expect(second.status, second.stderr).toBe(2);
      expect(second.stderr).toContain(`troupe up: another troupe process runs nats-server on the store of ${up.dir} (pid ${up.child.pid} on `);
      expect(second.stdout).not.toMatch(/starting nats-server/);
      // The first carries on.
      expect((await fetch(`${up.base}/api/stats`)).ok).toBe(true);
      up.child.kill("SIGTERM");
      expect(await up.exited, up.output().slice(-3000)).toBe(0);
    } finally {
      up.dispose();
    }
  }, 300_000);

  it("stops every child (nats-server included) when `troupe up` itself is killed with SIGKILL", async () => {
    const up = await startBareUp("troupe-up-kill-", { keepStdout: true });
    try {
      await up.dashboard();
      const children = up.children();
      // nats-server, master, projector, UI: each in its own process group, so no group signal reaches them.
      expect(children.length, up.output()).toBeGreaterThanOrEqual(4);
      up.child.kill("SIGKILL");
      await up.exited;
      // nats-server goes at once; the master then spends up to ~10 s on lease requests that time out before it closes.
      const alive = () => children.filter(processAlive).map((pid) => `${pid} (${commandLine(pid)})`).join(", ");
      await waitFor(`up's children ${children.join(", ")} to stop`, () => children.every((pid) => !processAlive(pid)), 60_000, 50).catch((e: Error) => {
        throw new Error(`${e.message}; still running: ${alive()}\n--- output (tail) ---\n${up.output().slice(-3000)}`);
      });
      expect(await fetch(`${up.base}/api/stats`).then(() => "up", () => "down")).toBe("down");
    } finally {
      up.dispose();
    }
  }, 300_000);
});

/**
 * Free ports, none handed out before in this file: the OS may give a port that was just closed again (a run drew the
 * same one for --ws-port and --ui-port), and `up` refuses two flags naming one port.
 */
const handedOut = new Set<number>();
async function freshPorts(n: number): Promise<number[]> {
  const out: number[] = [];
  while (out.length < n) {
    const p = await freePort();
    if (handedOut.has(p)) continue;
    handedOut.add(p);
    out.push(p);
  }
  return out;
}

/** `troupe up --workers 0` (unless `args` say otherwise) on free ports in a fresh data dir; stdout kept in `output()` or only drained. */
async function startBareUp(dirPrefix: string, o: { keepStdout: boolean; args?: string[]; env?: Record<string, string> }) {
  const [nats, ws, mon, ui] = await freshPorts(4);
  const dir = mkdtempSync(join(tmpdir(), dirPrefix));
  // A flag given twice is refused: --workers 0 only when the caller gives none.
  const workers = o.args?.includes("--workers") ? [] : ["--workers", "0"];
  const child = spawn(process.execPath, [TROUPE, "up", ...workers, "--data-dir", dir, "--nats-host", "127.0.0.1", "--ws-host", "127.0.0.1",
    "--nats-port", String(nats), "--ws-port", String(ws), "--monitor-port", String(mon), "--ui-port", String(ui), ...(o.args ?? [])], {
    env: { ...process.env, TROUPE_MASTER_PORT: "0", TROUPE_PROJECTOR_PORT: "0", ...o.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  if (o.keepStdout) child.stdout.on("data", (b: Buffer) => (out += b.toString()));
  else child.stdout.resume();
  child.stderr.on("data", (b: Buffer) => (out += b.toString()));
  const base = `http://127.0.0.1:${ui}`;
  return {
    child,
    base,
    dir,
    natsUrl: `nats://127.0.0.1:${nats}`,
    /** nats-server's connections with the user each logged in as (`/connz?auth=1`). */
    connections: async () => ((await (await fetch(`http://127.0.0.1:${mon}/connz?auth=1&limit=1000`)).json()) as { connections: { name?: string; authorized_user?: string }[] }).connections,
    exited: new Promise<number | null>((res) => child.once("exit", (code) => res(code))),
    output: () => out,
    dashboard: () => waitFor("the dashboard", async () => (await fetch(`${base}/api/stats`).catch(() => null))?.ok === true, 180_000, 250)
      .catch((e: Error) => Promise.reject(new Error(`${e.message} (output: ${out.slice(-2000)})`))),
    children: () => execFileSync("pgrep", ["-P", String(child.pid)], { encoding: "utf8" }).trim().split("\n").map(Number),
    dispose() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim().slice(0, 200);
  } catch {
    return "gone";
  }
}

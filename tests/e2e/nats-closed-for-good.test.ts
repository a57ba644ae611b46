import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, startNatsServer, type Credential, type NatsRole, type RunningNatsServer } from "@troupe/events/node";
import { startTestNats, waitFor, type TestNats } from "../harness/index.ts";
import { ensureUiBuild } from "../../ui/launch/build.ts";
import { startProcess, type Managed } from "../../ui/launch/processes.ts";

/**
 * nats.js closes a connection for good, even with unlimited reconnects, when
 * the server refuses its password twice in a row — e.g. NATS restarted with
 * rotated credentials. A service must then not sit there doing nothing: the
 * master and the worker exit 1 (for a supervisor to restart them with the new
 * credentials), and the UI server connects again on its next request.
 */

const TROUPE = fileURLToPath(new URL("../../bin/troupe.mjs", import.meta.url));
let nats: TestNats | undefined;
let other: RunningNatsServer | undefined;
const procs = new Map<string, Managed>();
const logs = new Map<string, string[]>();

afterAll(async () => {
  await Promise.all([...procs.values()].map((p) => p.stop("SIGKILL", 1000)));
  await other?.stop("SIGKILL");
  await nats?.stop();
}, 60_000);

const portOf = (url: string) => Number(url.split(":").pop());

describe("a NATS connection closed for good", () => {
  it("makes the master and the worker exit 1, and the UI connect again on its next request", async () => {
    await ensureUiBuild((l) => console.log(l));
    nats = await startTestNats({ init: true });
    const uiPort = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env, ...nats.env(),
      TROUPE_HEARTBEAT_MS: "1000", TROUPE_MASTER_PORT: "0", TROUPE_UI_PORT: String(uiPort), TROUPE_UI_BUILD: "false",
      TROUPE_NATS_WS_PORT: String(portOf(nats.wsUrl)), TROUPE_WORKER_ID: "wn-closed-01", TROUPE_WORKER_PORT: "0", TROUPE_LOG_LEVEL: "info",
    };
    for (const name of ["master", "worker", "ui"]) {
      const lines: string[] = [];
      logs.set(name, lines);
      procs.set(name, startProcess(name, process.execPath, [TROUPE, name], env, (l) => lines.push(l)));
    }
    const out = (name: string) => (logs.get(name) ?? []).slice(-30).join("\n");
    const base = `http://127.0.0.1:${uiPort}`;
    const cancel = () => fetch(`${base}/api/jobs/job-none/cancel`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }).then((r) => r.status, () => 0);
    await waitFor(`the worker registered (${out("worker")})`, () => logs.get("worker")?.some((l) => l.includes("worker registered")), 120_000, 100);
    // A command through the UI opens its own (lazy) connection; the master answers: no such job.
    await waitFor(`the UI relaying to the master (${out("ui")})`, async () => (await cancel()) === 404, 60_000, 250);

    // NATS back on the same ports and store, but every service's password has changed.
    await nats.server.stop("SIGKILL");
    const rotated = Object.fromEntries(Object.entries(nats.credentials).map(([r, c]) => [r, { ...c, password: `${c.password}x` }])) as Record<NatsRole, Credential>;
    const restart = (credentials: Record<NatsRole, Credential>) => startNatsServer({
      dataDir: nats!.dataDir, credentials, host: "127.0.0.1", wsHost: "127.0.0.1", monitorHost: "127.0.0.1",
      port: portOf(nats!.url), wsPort: portOf(nats!.wsUrl), monitorPort: portOf(nats!.monitorUrl), serverName: `test-${portOf(nats!.url)}`, onLog: () => {},
    });
    other = await restart(rotated);

    for (const name of ["master", "worker"]) {
      const code = await Promise.race([procs.get(name)!.exited, new Promise<string>((r) => setTimeout(() => r("still running"), 60_000))]);
      expect(code, `${name} exit (${out(name)})`).toBe(1);
      // Saying why: the credentials were refused (it said only "closed for good", with a stack).
      expect(out(name), name).toMatch(name === "worker"
        ? /NATS refused this worker's NATS user worker\S*, and the connection is closed for good: the user was removed \(`troupe worker-user remove`\), or its password changed/
        : /NATS refused the master's NATS user, and the connection is closed for good: its password changed \(a new credentials\.env\)/);
      expect(out(name), name).not.toMatch(/still running .* after it finished/);
    }
    // The UI stays up; while its password is refused a command is "unavailable" …
    await waitFor(`the UI's connection closed for good (${out("ui")})`, () => logs.get("ui")?.some((l) => l.includes("closed for good")), 30_000, 100);
    expect(await cancel()).toBe(503);
    // … and once NATS takes its password again, the next request connects anew (no restart of the UI).
    await other.stop();
    other = await restart(nats.credentials);
    const master = startProcess("master-2", process.execPath, [TROUPE, "master"], env, (l) => logs.get("master")?.push(l));
    procs.set("master-2", master);
    await waitFor(`the UI relaying again (${out("ui")})`, async () => (await cancel()) === 404, 60_000, 250);
  }, 300_000);
});

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { createEvent, type TroupeEvent } from "@troupe/events";
import { connectAs, freePort, publishEvent } from "@troupe/events/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");

/** A `troupe` child process whose output lines can be awaited. */
function troupe(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [join(ROOT, "bin/troupe.mjs"), ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  const feed = (chunk: Buffer) => {
    output += chunk.toString();
    for (const w of waiters.slice()) {
      const m = output.match(w.re);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m[0]);
      }
    }
  };
  child.stdout.on("data", feed);
  child.stderr.on("data", feed);
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  return {
    child,
    exited,
    output: () => output,
    waitFor(re: RegExp, timeoutMs = 20_000): Promise<string> {
      const m = output.match(re);
      if (m) return Promise.resolve(m[0]);
      return new Promise((res, rej) => {
        const t = setTimeout(() => rej(new Error(`timed out waiting for ${re} in output:\n${output}`)), timeoutMs);
        waiters.push({ re, resolve: (l) => { clearTimeout(t); res(l); } });
        void exited.then((code) => { clearTimeout(t); rej(new Error(`process exited (${code}) before ${re}; output:\n${output}`)); });
      });
    },
  };
}

describe("troupe nats → init → tail (the foundation's done-when)", () => {
  let dataDir: string;
  let env: Record<string, string>;
  let nats: ReturnType<typeof troupe>;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "troupe-cli-"));
    const port = await freePort();
    env = {
      TROUPE_DATA_DIR: dataDir, NATS_URL: `nats://127.0.0.1:${port}`,
      TROUPE_NATS_HOST: "127.0.0.1", TROUPE_NATS_PORT: String(port), TROUPE_NATS_WS_HOST: "127.0.0.1",
      TROUPE_NATS_WS_PORT: String(await freePort()), TROUPE_NATS_MONITOR_PORT: String(await freePort()),
    };
    nats = troupe(["nats"], env);
    children.push(nats.child);
    await nats.waitFor(/troupe nats: ready/);
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("generated private credentials for every role", () => {
    const st = statSync(join(dataDir, "credentials.env"));
    expect(st.mode & 0o777).toBe(0o600);
  });

  it("init creates the stores, and is idempotent", async () => {
    const first = troupe(["init"], env);
    expect(await first.exited).toBe(0);
    expect(first.output()).toMatch(/stream TROUPE_EVENTS: created/);
    expect(first.output()).toMatch(/kv bucket troupe-master: ready/);
    const second = troupe(["init"], env);
    expect(await second.exited).toBe(0);
    expect(second.output()).toMatch(/stream TROUPE_EVENTS: unchanged/);
  });

  it("tail prints an event published by a client, one readable line", async () => {
    const tail = troupe(["tail"], env);
    children.push(tail.child);
    await tail.waitFor(/following troupe\.evt\.>/);
    const nc = await connectAs({ url: env.NATS_URL!, role: "worker", dataDir, name: "test-publisher" });
    const e = createEvent("job.started", { jobId: "job-tail", workerId: "wn-demo-01", attempt: 1 }, "wn-demo-01") as TroupeEvent;
    await publishEvent(jetstream(nc), e);
    const line = await tail.waitFor(/.*troupe\.evt\.job\.job-tail\.started.*/);
    expect(line).toMatch(/^\d\d:\d\d:\d\d\.\d{3}  troupe\.evt\.job\.job-tail\.started  job\.started  job=job-tail worker=wn-demo-01 attempt=1$/);
    // an invalid message is shown as such, not dropped silently and not fatal
    const nc2 = await connectAs({ url: env.NATS_URL!, role: "worker", dataDir, name: "test-bad" });
    await jetstream(nc2).publish("troupe.evt.job.job-tail.progress", "{oops");
    expect(await tail.waitFor(/.*job-tail\.progress  INVALID.*/)).toMatch(/INVALID not-json: payload is not JSON/);
    tail.child.kill("SIGINT");
    expect(await tail.exited).toBe(0);
    await nc.close();
    await nc2.close();
  });

  it("tail --since replays from the stream first, --json prints raw bodies", async () => {
    const tail = troupe(["tail", "--since", "1", "--json", "troupe.evt.job.job-tail.>"], env);
    children.push(tail.child);
    const line = await tail.waitFor(/\{"id":"e[^\n]*"type":"job\.started"[^\n]*\}/);
    expect(JSON.parse(line)).toMatchObject({ type: "job.started", data: { jobId: "job-tail" } });
    tail.child.kill("SIGTERM");
    expect(await tail.exited).toBe(0);
  });

  it("nats stops cleanly on SIGTERM", async () => {
    nats.child.kill("SIGTERM");
    expect(await nats.exited).toBe(0);
  });
});

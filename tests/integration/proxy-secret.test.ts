import { createServer, type Server } from "node:http";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fastEnv, finalJob, jobIdOf, readLog, spawnChild, spawnMaster, submit, type Child } from "../../services/master/test/helpers.ts";
import { startHttpProxy } from "../../services/worker/test/proxies.ts";
import { startTestNats, waitFor, type TestNats } from "../harness/index.ts";

/**
 * A proxy password given at submission reaches the real worker's Chromium
 * (the proxy sees the right credentials) and never appears in clear in the
 * event log that the projector, the UI and the dashboard's live user read.
 */

const PASSWORD = "s3cret-proxy-pässword";
let nats: TestNats;
let ui: NatsConnection;
let site: Server;
let base: string;
const children: Child[] = [];

beforeAll(async () => {
  nats = await startTestNats({ init: true });
  ui = await nats.connect("ui");
  site = createServer((_req, res) => res.writeHead(200, { "content-type": "text/html" }).end("<title>behind the proxy</title>"));
  await new Promise<void>((r) => site.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(site.address() as { port: number }).port}`;
}, 60_000);

afterAll(async () => {
  for (const c of children) await c.kill9();
  site?.close();
  await nats?.stop();
});

/** Every body in TROUPE_EVENTS, as stored. */
async function rawLog(nc: NatsConnection): Promise<string[]> {
  const js = jetstream(nc);
  const last = (await (await js.jetstreamManager()).streams.info("TROUPE_EVENTS")).state.last_seq;
  const out: string[] = [];
  const msgs = await (await js.consumers.get("TROUPE_EVENTS")).consume();
  for await (const m of msgs) {
    out.push(new TextDecoder().decode(m.data));
    if (m.seq >= last) break;
  }
  await msgs.close();
  return out;
}

/** A real worker (its own process, with Chromium) on the test server; resolves once it has registered. */
async function startWorker(name: string): Promise<Child> {
  const worker = spawnChild(["bin/troupe.mjs", "worker"], {
    ...nats.env(), TROUPE_WORKER_NAME: name, TROUPE_WORKER_PORT: "0", TROUPE_WORKER_HOST: "127.0.0.1",
    // Lost after 3 s of silence (not 1.5 s, which a worker on a loaded 2-core CI machine can be silent for),
    // and the master's lease (fastEnv), so the worker's progress renews it in time.
    TROUPE_HEARTBEAT_MS: "1000", TROUPE_JOB_LEASE_MS: fastEnv("-").TROUPE_JOB_LEASE_MS!, TROUPE_ALLOW_PRIVATE_TARGETS: "true", TROUPE_MAX_CPU: "100", TROUPE_MIN_FREE_MEMORY_MB: "0", TROUPE_LOG_LEVEL: "warn",
  }, { group: true });
  children.push(worker);
  await waitFor("the worker registered", () => worker.output().includes("registered as") || (worker.proc.exitCode !== null ? Promise.reject(new Error(worker.output())) : false), 60_000, 100);
  return worker;
}

/**
 * Waits for the job's final state, folded from the log; an end other than completed fails the test with its history.
 * The final state, not the first attempt's end: on a loaded machine a worker can be declared lost and its attempt
 * cancelled, and the job's next attempt is the one that completes (a CI run).
 */
async function completed(jobId: string, master: Child) {
  const job = await finalJob(ui, jobId, 60_000, `job ${jobId} to finish (master: ${master.output().slice(-500)})`);
  if (job.status !== "completed") throw new Error(`job ${jobId} ended ${job.status}: ${JSON.stringify(job.history)}\nmaster: ${master.output().slice(-2000)}`);
}

describe("proxy passwords", () => {
  it("are sealed in the log, opened by the real worker, and sent to the proxy", async () => {
    const proxy = await startHttpProxy({ user: "troupe", password: PASSWORD });
    try {
      const master = spawnMaster(nats, "m-proxy");
      children.push(master);
      await startWorker("Worker Node Proxy");
      const reply = await submit(ui, { url: `${base}/page`, proxy: { server: proxy.url, username: "troupe", password: PASSWORD, bypass: ["<-loopback>"] } });
      const jobId = jobIdOf(reply);
      await completed(jobId, master);
      // The worker sends the credentials up front: the proxy never had to ask (407), and it carries only what logs in.
      expect(proxy.refused).toBe(0);
      expect(proxy.carried).toContain(`${base}/page`);
      const log = await rawLog(ui);
      const submitted = log.map((b) => JSON.parse(b) as { type: string; data: { jobId: string; spec: { proxy?: Record<string, unknown> } } }).find((e) => e.type === "job.submitted" && e.data.jobId === jobId);
      expect(submitted?.data.spec.proxy).toEqual({ server: proxy.url, username: "troupe", sealedPassword: expect.stringMatching(/^v1\./), bypass: ["<-loopback>"] });
      for (const body of log) {
        expect(body).not.toContain(PASSWORD);
        expect(body).not.toContain(JSON.stringify(PASSWORD).slice(1, -1));
      }
    } finally {
      await proxy.close();
      for (const c of children.splice(0)) await c.kill9();
    }
  }, 120_000);

  it("are refused at submission by a master without a secrets key, naming the field", async () => {
    // Credentials from the environment, and a data dir without credentials.env: no TROUPE_SECRETS_KEY anywhere.
    const master = spawnChild(["bin/troupe.mjs", "master"], { ...nats.env(), TROUPE_DATA_DIR: mkdtempSync(join(tmpdir(), "troupe-nokey-")), TROUPE_MASTER_ID: "m-nokey", TROUPE_MASTER_PORT: "0", TROUPE_LOG_LEVEL: "warn" });
    children.push(master);
    const body = { url: `${base}/page`, proxy: { server: "http://127.0.0.1:9", username: "u", password: PASSWORD } };
    const reply = await waitFor("the keyless master to answer", () => submit(ui, body).catch(() => false), 30_000, 200);
    expect(reply).toMatchObject({ ok: false, error: { code: "invalid", field: "proxy.password", message: expect.stringMatching(/no TROUPE_SECRETS_KEY/) } });
    // Without a password the same master takes the job.
    expect(await submit(ui, { url: `${base}/page`, proxy: { server: "http://127.0.0.1:9" } })).toMatchObject({ ok: true });
    for (const b of await rawLog(ui)) expect(b).not.toContain(PASSWORD);
  }, 60_000);

  it("after `troupe rotate-key`, a job sealed with the old key still runs on a worker that has the new lines", async () => {
    // The keyless master of the test before would answer submissions too.
    for (const c of children.splice(0)) await c.kill9();
    const proxy = await startHttpProxy({ user: "troupe", password: PASSWORD });
    try {
      const master = spawnMaster(nats, "m-rotate");
      children.push(master);
      // Sealed by a master holding the old key; no worker yet, so the job waits in the queue.
      const body = { url: `${base}/page`, proxy: { server: proxy.url, username: "troupe", password: PASSWORD, bypass: ["<-loopback>"] } };
      const jobId = jobIdOf(await waitFor("the master to answer", () => submit(ui, body).catch(() => null), 30_000, 200));
      const before = readFileSync(join(nats.dataDir, "credentials.env"), "utf8");
      const rotate = spawnChild(["bin/troupe.mjs", "rotate-key"], { TROUPE_DATA_DIR: nats.dataDir });
      await new Promise((r) => (rotate.proc.exitCode !== null ? r(null) : rotate.proc.once("exit", r)));
      expect(rotate.proc.exitCode, rotate.output()).toBe(0);
      const oldKey = /^TROUPE_SECRETS_KEY=(.+)$/m.exec(before)?.[1];
      expect(rotate.output()).toContain(`TROUPE_SECRETS_KEYS_PREVIOUS=${oldKey}`);
      expect(readFileSync(join(nats.dataDir, "credentials.env"), "utf8")).not.toContain(`TROUPE_SECRETS_KEY=${oldKey}\n`);
      // The worker reads the new key and the previous one from credentials.env, as a worker given both lines would.
      await startWorker("Worker Node Rotated");
      await completed(jobId, master);
      // The worker sends the credentials up front: the proxy never had to ask (407), and it carries only what logs in.
      expect(proxy.refused).toBe(0);
      expect(proxy.carried).toContain(`${base}/page`);
    } finally {
      await proxy.close();
    }
  }, 120_000);
});

import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { NatsConnection } from "@nats-io/nats-core";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningMaster } from "../src/main.ts";
import { foldJobs, masterIn, readLog, spawnChild, submit, type Child } from "./helpers.ts";
import { lookupJob } from "../src/state.ts";

/** Real `troupe worker` processes with Chromium, driven by a real master. */

let nats: TestNats;
let master: RunningMaster;
let ui: NatsConnection;
let site: Server;
let base: string;
const held: ServerResponse[] = [];
const hits = new Map<string, number>();
const children: Child[] = [];

beforeAll(async () => {
  nats = await startTestNats({ init: true });
  master = await masterIn(nats, "m-real", { heartbeatIntervalMs: 500, leaseMs: 30_000, assignTimeoutMs: 5000 });
  ui = await nats.connect("ui");
  // /slow hangs the first time it is asked for (the worker running it gets killed), then answers.
  site = createServer((req, res) => {
    const n = (hits.get(req.url ?? "") ?? 0) + 1;
    hits.set(req.url ?? "", n);
    if (req.url === "/slow" && n === 1) {
      held.push(res);
      return;
    }
    res.writeHead(200, { "content-type": "text/html" }).end(`<html><head><title>page ${req.url}</title></head><body><h1>hello</h1></body></html>`);
  });
  await new Promise<void>((r) => site.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
}, 60_000);

afterAll(async () => {
  for (const c of children) await c.kill9();
  for (const r of held) r.destroy();
  site?.close();
  await master?.stop();
  await nats?.stop();
});

async function realWorker(name: string): Promise<Child> {
  const c = spawnChild(["bin/troupe.mjs", "worker"], {
    ...nats.env(), TROUPE_WORKER_NAME: name, TROUPE_WORKER_PORT: "0", TROUPE_WORKER_HOST: "127.0.0.1",
    // Lost after 3 s of silence, not 1.5 s (a loaded 2-core machine stalls a worker that long).
    TROUPE_HEARTBEAT_MS: "1000", TROUPE_ALLOW_PRIVATE_TARGETS: "true", TROUPE_MAX_CPU: "100", TROUPE_MIN_FREE_MEMORY_MB: "0", TROUPE_MAX_JOBS: "1", TROUPE_LOG_LEVEL: "warn",
  }, { group: true });
  children.push(c);
  await waitFor(`${name} registered`, () => (c.output().includes("registered as") ? true : c.proc.exitCode !== null ? Promise.reject(new Error(c.output())) : false), 60_000, 100);
  return c;
}

describe("with real workers and Chromium", () => {
  it("runs a job; after kill -9 of the worker (and its browser) mid-job, another real worker completes it exactly once", async () => {
    const a = await realWorker("Worker Node Real A");
    const ok = await submit(ui, { url: `${base}/hello` });
    if (!ok.ok) throw new Error(ok.error.message);
    const job = (id: string) => lookupJob(master.master.state, id);
    await waitFor("the first job completed in Chromium", () => job(ok.jobId)?.status === "completed", 60_000, 100);
    expect(job(ok.jobId)).toMatchObject({ workerId: "wn-real-a" });
    expect(foldJobs(await readLog(ui)).jobs.get(ok.jobId)).toMatchObject({ workerId: "wn-real-a", result: { success: true } });

    const slow = await submit(ui, { url: `${base}/slow` });
    if (!slow.ok) throw new Error(slow.error.message);
    await waitFor("the slow job running on A", () => job(slow.jobId)?.workerId === "wn-real-a" && ["assigned", "running"].includes(job(slow.jobId)?.status ?? "") && (hits.get("/slow") ?? 0) >= 1, 60_000, 100);
    await realWorker("Worker Node Real B");
    await a.kill9();
    await waitFor("the slow job completed by B", () => job(slow.jobId)?.status === "completed", 90_000, 100);
    expect(job(slow.jobId)).toMatchObject({ workerId: "wn-real-b" });

    const log = await readLog(ui);
    expect(log.some((l) => l.event.type === "worker.lost" && l.event.data.workerId === "wn-real-a" && l.event.data.jobIds.includes(slow.jobId))).toBe(true);
    const { jobs } = foldJobs(log);
    const h = jobs.get(slow.jobId)!.history;
    // A's attempt went back to the queue because A was lost; on a loaded machine B may refuse or miss a few
    // offers first (refusals spend no attempt); in the end exactly one attempt, B's, completed.
    expect(h[0]).toMatchObject({ attempt: 1, workerId: "wn-real-a", outcome: "requeued", requeueReason: "worker-lost" });
    expect(h.at(-1)).toMatchObject({ workerId: "wn-real-b", outcome: "completed" });
    expect(h.filter((x) => x.outcome === "completed")).toHaveLength(1);
    expect(h.slice(1, -1).every((x) => x.outcome === "requeued" && x.requeueReason === "worker-refused")).toBe(true);
  }, 240_000);
});

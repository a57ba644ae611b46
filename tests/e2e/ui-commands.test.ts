import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Msg, NatsConnection } from "@nats-io/nats-core";
import { Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "@troupe/events/node";
import { startTestNats, waitFor, type TestNats } from "../harness/index.ts";
import { createEvent, encodeEvent, subjectOf, subjects, type TroupeEvent } from "@troupe/events";
import { ensureUiBuild } from "../../ui/launch/build.ts";
import { dbPathFor, newGenerationPath, swapIn } from "../../services/projector/src/db-file.ts";
import { openWriterDb, ReadModelWriter } from "../../services/projector/src/writer.ts";
import { startProcess, type Managed } from "../../ui/launch/processes.ts";

/**
 * The dashboard's commands when a master takes a request and does not answer (paused, not dead: SIGSTOP, a
 * frozen VM): the real UI server and nats-server, with a stand-in for the masters' queue group.
 */

const TROUPE = fileURLToPath(new URL("../../bin/troupe.mjs", import.meta.url));
let nats: TestNats;
let ui: Managed | undefined;
let url: string;
let master: NatsConnection;
const out: string[] = [];

beforeAll(async () => {
  await ensureUiBuild(() => {});
  nats = await startTestNats({ init: true });
  master = await nats.connect("master", "stand-in-master");
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  ui = startProcess("ui", process.execPath, [TROUPE, "ui", "--no-build", "--port", String(port)], { ...process.env, ...nats.env(), TROUPE_UI_RPC_TIMEOUT_MS: "2000", TROUPE_LOG_LEVEL: "info" }, (l) => out.push(l));
  await waitFor("the UI to listen", async () => (await fetch(`${url}/api/workers`).catch(() => null)) !== null, 60_000, 100);
}, 300_000);

afterAll(async () => {
  await ui?.stop();
  await nats?.stop();
});

/** Stands in for the masters on `subject`: `answer(n, body)` is called for the n-th request; undefined = stay silent, as a paused master. */
async function standIn(subject: string, answer: (n: number, body: Record<string, unknown>) => unknown) {
  const seen: Record<string, unknown>[] = [];
  const sub = master.subscribe(subject, {
    queue: "troupe-master",
    callback: (_e, m: Msg) => {
      const body = m.json<Record<string, unknown>>();
      seen.push(body);
      const reply = answer(seen.length, body);
      if (reply !== undefined) m.respond(JSON.stringify(reply));
    },
  });
  await master.flush();
  return { seen, stop: () => sub.unsubscribe() };
}

const post = (path: string, body: unknown) => fetch(`${url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

describe("dashboard commands when a master does not answer", () => {
  it("POST /api/jobs asks again with an idempotency key of its own, and answers 201 with the job a later try got", async () => {
    const m = await standIn("troupe.rpc.jobs.submit", (n) => (n >= 2 ? { ok: true, jobId: "kjobfromtheretry", duplicate: true } : undefined));
    try {
      const r = await post("/api/jobs", { url: "https://example.com/paused" });
      expect(r.status).toBe(201);
      expect(await r.json()).toEqual({ success: true, jobId: "kjobfromtheretry" });
      expect(m.seen).toHaveLength(2);
      expect(m.seen[0]?.idempotencyKey).toMatch(/^ui-/);
      expect(m.seen[1]).toEqual(m.seen[0]);
    } finally {
      m.stop();
    }
  });

  it("keeps the caller's own key, and reports a duplicate of it as one", async () => {
    const m = await standIn("troupe.rpc.jobs.submit", (n) => (n >= 2 ? { ok: true, jobId: "kjobofthekey", duplicate: true } : undefined));
    try {
      const r = await post("/api/jobs", { url: "https://example.com/keyed", idempotencyKey: "order-42" });
      expect(r.status).toBe(200);
      expect(await r.json()).toEqual({ success: true, jobId: "kjobofthekey", duplicate: true });
      expect(m.seen.map((b) => b.idempotencyKey)).toEqual(["order-42", "order-42"]);
    } finally {
      m.stop();
    }
  });

  it("POST /api/jobs while no master listens (a restart gap) waits for one to start, then answers 201", async () => {
    const before = out.length;
    const sent = post("/api/jobs", { url: "https://example.com/restart-gap" });
    // The master "starts" only once the UI has been told nobody listens.
    await waitFor("the UI waiting for a master", () => out.slice(before).some((l) => l.includes("no master listens; waiting for one to start")), 5000, 20);
    const m = await standIn("troupe.rpc.jobs.submit", () => ({ ok: true, jobId: "kjobafterthegap" }));
    try {
      const r = await sent;
      expect(r.status).toBe(201);
      expect(await r.json()).toEqual({ success: true, jobId: "kjobafterthegap" });
      expect(m.seen).toHaveLength(1);
    } finally {
      m.stop();
    }
  });

  it("POST /api/jobs with no master at all answers 503 after waiting its answer timeout, saying so", async () => {
    const started = Date.now();
    const r = await post("/api/jobs", { url: "https://example.com/nobody" });
    expect(r.status).toBe(503);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
    const body = (await r.json()) as { error: { code: string; message: string } };
    expect(body.error).toMatchObject({ code: "unavailable" });
    expect(body.error.message).toBe("no master is answering troupe.rpc.jobs.submit (none listened for 2.0 s); start one with `troupe master`");
  });

  it("a try that timed out, then nobody listening: the 503 after the wait names the key to submit again with", async () => {
    // A master killed under the first try (it may have recorded the job), none listening after it.
    let sub: { stop(): void } | undefined;
    sub = await standIn("troupe.rpc.jobs.submit", () => {
      sub?.stop();
      return undefined;
    });
    const started = Date.now();
    const r = await post("/api/jobs", { url: "https://example.com/killed-under-it" });
    expect(r.status).toBe(503);
    // The whole wait came after the timed-out try (it was counted from the first try, so it was used up).
    expect(Date.now() - started).toBeGreaterThanOrEqual(4000);
    const body = (await r.json()) as { error: { code: string; message: string } };
    expect(body.error.message).toMatch(/^no master is answering troupe\.rpc\.jobs\.submit \(none listened for 2\.0 s\); start one with `troupe master`; the job may have been recorded all the same: to try again without a duplicate, send it with "idempotencyKey": "ui-[^"]+"$/);
  });

  it("after three silent tries answers 504, naming the key to submit again with", async () => {
    const m = await standIn("troupe.rpc.jobs.submit", () => undefined);
    try {
      const r = await post("/api/jobs", { url: "https://example.com/silent" });
      expect(r.status).toBe(504);
      const body = (await r.json()) as { error: { code: string; message: string } };
      expect(m.seen).toHaveLength(3);
      expect(body.error.code).toBe("timeout");
      expect(body.error.message).toContain(`within 2000 ms (3 tries); the job may have been recorded all the same: to try again without a duplicate, send it with "idempotencyKey": "${String(m.seen[0]?.idempotencyKey)}"`);
    } finally {
      m.stop();
    }
  });

  it("refused as unavailable (the master's append got no confirmation), answers 503 naming the key it made up, to submit again with", async () => {
    const m = await standIn("troupe.rpc.jobs.submit", () => ({ ok: false, error: { code: "unavailable", message: "the log did not confirm the job (requests closed); it may have been recorded all the same, as job kx: submit it again with the same idempotencyKey to find out (a key is never recorded twice)" } }));
    try {
      const r = await post("/api/jobs", { url: "https://example.com/unconfirmed" });
      expect(r.status).toBe(503);
      const body = (await r.json()) as { error: { code: string; message: string } };
      expect(m.seen).toHaveLength(1);
      expect(body.error.code).toBe("unavailable");
      expect(body.error.message).toContain(`to try again without a duplicate, send it with "idempotencyKey": "${String(m.seen[0]?.idempotencyKey)}"`);
    } finally {
      m.stop();
    }
  });

  it("takes `conflict: … is cancelled` to a cancel asked again as success (the first try did it), but not to a first try", async () => {
    const late = await standIn("troupe.rpc.jobs.cancel", (n) => (n >= 2 ? { ok: false, error: { code: "conflict", message: "job job-late is cancelled", field: "jobId" } } : undefined));
    try {
      const r = await post("/api/jobs/job-late/cancel", {});
      expect(r.status).toBe(200);
      expect(await r.json()).toEqual({ success: true });
      expect(late.seen).toHaveLength(2);
    } finally {
      late.stop();
    }
    const done = await standIn("troupe.rpc.jobs.cancel", () => ({ ok: false, error: { code: "conflict", message: "job job-done is cancelled", field: "jobId" } }));
    try {
      const r = await post("/api/jobs/job-done/cancel", {});
      expect(r.status).toBe(409);
      expect(((await r.json()) as { error: { message: string } }).error.message).toBe("job job-done is cancelled");
    } finally {
      done.stop();
    }
  });

  it("asks a cancel and a drain again, but not a retry (redriving twice is not a no-op)", async () => {
    const cancel = await standIn("troupe.rpc.jobs.cancel", (n) => (n >= 2 ? { ok: true } : undefined));
    const drain = await standIn("troupe.rpc.workers.drain", (n) => (n >= 2 ? { ok: true } : undefined));
    const retry = await standIn("troupe.rpc.jobs.retry", (n) => (n >= 2 ? { ok: true } : undefined));
    try {
      expect((await post("/api/jobs/job-paused/cancel", {})).status).toBe(200);
      expect(cancel.seen).toHaveLength(2);
      expect((await post("/api/workers/wn-paused/drain", {})).status).toBe(200);
      expect(drain.seen).toHaveLength(2);
      const r = await post("/api/jobs/job-paused/retry", {});
      expect(r.status).toBe(504);
      expect(retry.seen).toHaveLength(1);
    } finally {
      cancel.stop();
      drain.stop();
      retry.stop();
    }
  });

  it("troupe cancel and drain from a shell ask again as the dashboard does (a late `is cancelled` is success); troupe retry asks once", async () => {
    const cli = (...args: string[]) =>
      new Promise<{ code: number; stderr: string }>((res) => {
        execFile(process.execPath, [TROUPE, ...args, "--answer-timeout", "1000"], { env: { ...process.env, ...nats.env() } }, (e, _stdout, stderr) =>
          res({ code: e ? ((e as { code?: number }).code ?? 1) : 0, stderr }));
      });
    const cancel = await standIn("troupe.rpc.jobs.cancel", (n) => (n >= 2 ? { ok: false, error: { code: "conflict", message: "job job-shell is cancelled", field: "jobId" } } : undefined));
    const drain = await standIn("troupe.rpc.workers.drain", (n) => (n >= 3 ? { ok: true } : undefined));
    const retry = await standIn("troupe.rpc.jobs.retry", (n) => (n >= 2 ? { ok: true } : undefined));
    try {
      const c = await cli("cancel", "job-shell");
      expect(c.code, c.stderr).toBe(0);
      expect(cancel.seen).toEqual([{ jobId: "job-shell" }, { jobId: "job-shell" }]);
      const d = await cli("drain", "wn-shell", "--reason", "maintenance");
      expect(d.code, d.stderr).toBe(0);
      expect(drain.seen).toHaveLength(3);
      const r = await cli("retry", "job-shell");
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/no answer from a master on troupe\.rpc\.jobs\.retry/);
      expect(retry.seen).toHaveLength(1);
    } finally {
      cancel.stop();
      drain.stop();
      retry.stop();
    }
  }, 60_000);

  it("a bulk retry stops sending when the master goes silent and answers 504 with what was done, refused and not done", async () => {
    // No read models yet: an error that says so, not "nothing matches".
    const none = await post("/api/bulk/retry", { status: "dead", dryRun: true });
    expect(none.status).toBe(503);
    expect(((await none.json()) as { error: { message: string } }).error.message).toMatch(/^no read models at .* yet: start the projector/);
    // Read models with dead jobs, written as the projector would (no projector runs here).
    const path = dbPathFor(nats.env().TROUPE_DATA_DIR!);
    const gen = newGenerationPath(path);
    const w = new ReadModelWriter(openWriterDb(gen, "live"), { subjects, seriesRetentionMs: 3600_000, clockMs: Date.now });
    // More jobs than commands in flight (8), so stopping shows: the ones after the silence are never asked.
    const ids = Array.from({ length: 20 }, (_, i) => `bulk-${String(i + 1).padStart(2, "0")}`);
    let seq = 0;
    const msg = (e: TroupeEvent) => ({ seq: ++seq, subject: subjectOf(e), data: encodeEvent(e), publishedMs: Date.now() });
    const t0 = Date.now() - 60_000;
    const folded = w.applyBatch("TROUPE_EVENTS", ids.flatMap((jobId, i) => [
      msg(createEvent("job.submitted", { jobId, spec: { url: "https://example.com/bulk", priority: 5, maxAttempts: 1, timeoutMs: 60_000 } }, "t", new Date(t0 + i * 1000)) as TroupeEvent),
      msg(createEvent("job.dead", { jobId, reason: "expired", attempts: 0, epoch: 0 }, "t", new Date(t0 + i * 1000 + 500)) as TroupeEvent),
    ]));
    expect(folded).toMatchObject({ applied: 40 });
    w.db.close();
    swapIn(path, gen);

    // Newest first: bulk-20 is done, bulk-19 refused, then the master goes silent.
    const retry = await standIn("troupe.rpc.jobs.retry", (_n, body) =>
      body.jobId === "bulk-20" ? { ok: true } : body.jobId === "bulk-19" ? { ok: false, error: { code: "conflict", message: "job bulk-19 is requeued", field: "jobId" } } : undefined);
    try {
      const dry = await post("/api/bulk/retry", { status: "dead", dryRun: true });
      expect(await dry.json()).toEqual({ success: true, action: "retry", matched: 20, more: false, dryRun: true, jobIds: [...ids].reverse() });
      expect(retry.seen).toHaveLength(0);
      const r = await post("/api/bulk/retry", { status: "dead" });
      expect(r.status).toBe(504);
      const body = (await r.json()) as Record<string, unknown>;
      expect(body).toMatchObject({
        success: false, action: "retry", matched: 20, more: false, done: 1, refused: 1, notDone: 18,
        refusals: [{ jobId: "bulk-19", code: "conflict", message: "job bulk-19 is requeued" }],
        error: { code: "timeout", message: expect.stringMatching(/^retried 1 of 20 jobs; 1 refused; 18 not done — stopped: the master did not answer/) },
      });
      // Eight in flight, and the two lanes answered at once took one more each; after the first silence nothing new
      // was sent: the eight jobs after those were never asked.
      expect(retry.seen.length).toBeLessThanOrEqual(12);
      expect(new Set(retry.seen.map((b) => b.jobId)).size).toBe(retry.seen.length);
    } finally {
      retry.stop();
    }
  }, 60_000);

  it("every page says when no master leads: none ever ran, the last one stopped, or its lease ran out", async () => {
    const page = async () => (await fetch(`${url}/workers`)).text();
    const banner = (html: string) => /data-testid="no-master"[^>]*>([\s\S]*?)<\/p>/.exec(html)?.[1]?.replace(/<[^>]+>|<!--[\s\S]*?-->/g, "").replace(/\s+/g, " ").trim() ?? null;
    const kv = await new Kvm(master).open("troupe-master");
    // This stack has no master: none has ever written the lease.
    expect(banner(await page())).toMatch(/^No master has run yet: jobs wait until one does/);
    await kv.put("leader", JSON.stringify({ holder: "m-banner", expiresAtMs: Date.now() + 60_000 }));
    expect(banner(await page())).toBeNull();
    await kv.put("leader", JSON.stringify({ holder: "m-banner", expiresAtMs: Date.now() - 120_000 }));
    expect(banner(await page())).toMatch(/^No master is leading: the lease of m-banner ran out 2 min ago/);
    await kv.put("leader", JSON.stringify({ holder: "m-banner", expiresAtMs: 0 }));
    expect(banner(await page())).toMatch(/^No master is leading: m-banner stopped and none took over/);
    await kv.purge("leader");
  }, 60_000);
});

describe("the dashboard while nats-server does not answer (paused: SIGSTOP, a frozen VM)", () => {
  it("answers an artifact's download 503 unavailable, not 500 (a bug's)", async () => {
    // The store is opened once (here, by a download of an artifact there is none of); the calls after it are what a pause stops.
    expect((await fetch(`${url}/artifacts/job-none/1/000-shot.png`)).status).toBe(404);
    const pid = nats.server.process.pid as number;
    process.kill(pid, "SIGSTOP");
    try {
      const r = await fetch(`${url}/artifacts/job-none/1/000-shot.png`);
      const body = (await r.json()) as { error: { code: string; message: string } };
      expect(r.status, JSON.stringify(body)).toBe(503);
      expect(body.error.code).toBe("unavailable");
      expect(body.error.message).toMatch(/^the object store did not answer \(could not read the artifact\)/);
    } finally {
      process.kill(pid, "SIGCONT");
    }
  }, 60_000);
});

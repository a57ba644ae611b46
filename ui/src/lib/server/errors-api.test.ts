import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { RawMessage } from "../../../../services/projector/src/writer.ts";
import { register, run, writeReadModels } from "../../../../services/projector/test/read-model-fixture.ts";
import { apiOver } from "./api-over.ts";
import { recentFrom } from "../recent.ts";
import { fleetWarnings } from "../warnings.ts";

/**
 * The Overview's "Top errors" and `GET /api/errors`, against a real SQLite file of read models written by the
 * projector's writer from real events (no NATS), through the API's own handler and the pages' reads.
 */

const dir = mkdtempSync(join(tmpdir(), "troupe-errors-"));
const path = join(dir, "readmodels.sqlite");
const MIN = 60_000;
const now = Date.now();

const spec = { url: "https://shop.example/x", priority: 5, maxAttempts: 2, timeoutMs: 60_000 };
type Err = { message: string; code?: string; retryable: boolean };
let job = 0;
/** One job run on `workerId` at `timeMs`: completed, or failed with `error`. Its id goes in `ids[tag]`. */
const ids: Record<string, string[]> = {};
const runAs = (workerId: string, timeMs: number, error?: Err, tag = "other"): RawMessage[] => {
  const jobId = `j${++job}`;
  (ids[tag] ??= []).push(jobId);
  return run(jobId, workerId, timeMs, error, spec);
};
const timeout = (i: number): Err => ({ message: `waitForElement step did not finish within ${1500 + i} ms (#btn-${(0x4f2a + i).toString(16)})`, code: "timeout", retryable: true });
const refused = (i: number): Err => ({ message: `navigation to https://shop.example/product/${i}?session=s${i} failed: net::ERR_CONNECTION_REFUSED`, code: "navigation", retryable: true });
const html: Err = { message: `<img src=x onerror="alert(1)"> ${"x".repeat(400)}`, code: "step-failed", retryable: false };

const loadApi = apiOver(dir, path);
let api: typeof import("./api.ts");

beforeAll(async () => {
  const t0 = now - 3 * 3600_000;
  const events: RawMessage[] = ["w-a", "w-b", "w-c"].map((id) => register(id, t0));
  // 90 minutes ago, out of the window: 10 failures of another kind on w-a.
  for (let i = 0; i < 10; i++) events.push(...runAs("w-a", now - 90 * MIN + i * 1000, { message: `old cause ${i}`, code: "old", retryable: false }, "old"));
  // In the window, on every worker alike: 3 timeouts and 4 completions each (43 %).
  for (const [k, wid] of ["w-a", "w-b", "w-c"].entries()) {
    for (let i = 0; i < 3; i++) events.push(...runAs(wid, now - (20 - k) * MIN + i * 1000, timeout(k * 3 + i), "timeout"));
    for (let i = 0; i < 4; i++) events.push(...runAs(wid, now - 15 * MIN + i * 1000));
  }
  // Two refused navigations on w-b, the newest a few minutes ago; one page error, its message HTML and long, on w-c.
  events.push(...runAs("w-b", now - 8 * MIN, refused(12), "refused"), ...runAs("w-b", now - 3 * MIN, refused(99), "refused"));
  events.push(...runAs("w-c", now - 2 * MIN, html, "html"));
  writeReadModels(path, events);
  api = await loadApi();
});

async function get(url: string) {
  const res = await api.getErrors({ url: new URL(url, "http://127.0.0.1"), params: {} } as never);
  return { status: res.status, body: await res.json() };
}

describe("GET /api/errors", () => {
  it("groups the last 60 minutes' failed attempts by code and normalised message, largest first", async () => {
    const before = Date.now();
    const r = await get("/api/errors");
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ success: true, windowMinutes: 60, failedAttempts: 12, grouped: 12 });
    expect(r.body.from === new Date(recentFrom(before)).toISOString() || r.body.from === new Date(recentFrom(Date.now())).toISOString()).toBe(true);
    expect(Date.parse(r.body.asOf)).toBeGreaterThanOrEqual(before);
    expect(r.body.groups).toEqual([
      {
        code: "timeout", message: "waitForElement step did not finish within <n> ms (#btn-<id>)", count: 9, workers: 3,
        lastAt: new Date(now - 18 * MIN + 2000).toISOString(),
        example: { jobId: ids.timeout!.at(-1), attempt: 1, message: timeout(8).message },
      },
      {
        code: "navigation", message: "navigation to https://shop.example/product/<n> failed: net::ERR_CONNECTION_REFUSED", count: 2, workers: 1,
        lastAt: new Date(now - 3 * MIN).toISOString(),
        example: { jobId: ids.refused![1], attempt: 1, message: refused(99).message },
      },
      {
        // The message as the worker wrote it (the projector keeps 300 characters of it): the page renders it as text.
        code: "step-failed", message: expect.stringMatching(/^<img src=x onerror="alert\(<n>\)"> x+…$/), count: 1, workers: 1,
        lastAt: new Date(now - 2 * MIN).toISOString(),
        example: { jobId: ids.html![0], attempt: 1, message: expect.stringMatching(/^<img src=x onerror="alert\(1\)"> x+…$/) },
      },
    ]);
    expect(r.body.groups[2].example.message).toHaveLength(301);
  });

  it("takes a window and a limit, and refuses what it does not take in the API's error shape", async () => {
    const wide = await get("/api/errors?minutes=120&limit=1");
    expect(wide.status).toBe(200);
    expect(wide.body).toMatchObject({ windowMinutes: 120, failedAttempts: 22, grouped: 22 });
    // The old cause's 10 attempts outnumber the timeouts' 9.
    expect(wide.body.groups).toEqual([expect.objectContaining({ code: "old", message: "old cause <n>", count: 10, workers: 1 })]);
    const narrow = await get("/api/errors?minutes=5");
    expect(narrow.body).toMatchObject({ failedAttempts: 2 });
    // One attempt each: the newest first.
    expect(narrow.body.groups.map((g: { code: string }) => g.code)).toEqual(["step-failed", "navigation"]);
    for (const [q, param] of [["minutes=0", "minutes"], ["minutes=1441", "minutes"], ["minutes=abc", "minutes"], ["limit=51", "limit"], ["limit=-1", "limit"], ["minutes=5&minutes=6", "minutes"], ["window=5", "window"]] as const) {
      const bad = await get(`/api/errors?${q}`);
      expect(bad.status, q).toBe(400);
      expect(bad.body, q).toMatchObject({ success: false, error: { code: "invalid", field: param } });
    }
  });
});

describe("the Overview's reads", () => {
  it("reads the errors in the page's snapshot, and with the workers' windows they say the jobs fail, not the workers", async () => {
    const { context } = await import("./context.ts");
    const reads = context().reads();
    const t = Date.now();
    const { workers, recent, errors } = reads.snapshot(() => ({ workers: reads.listWorkers(), recent: reads.recentOutcomes(t), errors: reads.topErrors({ nowMs: t }) }));
    expect(errors.groups[0]).toMatchObject({ code: "timeout", count: 9, workers: 3 });
    // w-a 3 of 7, w-b 5 of 9, w-c 4 of 8 failed: every worker alike.
    expect(fleetWarnings(workers, 0, [], t, 90_000, 0, [], (id) => recent.get(id), errors.groups[0])).toEqual([
      "Jobs are failing on every worker (all 3 fail 43–56 % of their attempts in the last 60 min): most likely the jobs or their targets, not the workers — top error: timeout: “waitForElement step did not finish within <n> ms (#btn-<id>)” (9 attempts).",
    ]);
    // Two hours on, the window holds nothing.
    expect(reads.topErrors({ nowMs: t + 2 * 3600_000 })).toMatchObject({ failedAttempts: 0, grouped: 0, groups: [] });
  });
});

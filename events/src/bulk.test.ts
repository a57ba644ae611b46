import { describe, expect, it } from "vitest";
import { BULK_DEFAULT_LIMIT, bulkTargets, describeBulk, parseBulkRequest, runBulk, type BulkItemOutcome } from "./bulk.ts";

describe("parseBulkRequest", () => {
  it("takes a status or a list, trims the search, and defaults to 1000 jobs and a real run", () => {
    expect(parseBulkRequest("retry", { status: "dead" })).toEqual({ ok: true, value: { status: ["dead"], limit: BULK_DEFAULT_LIMIT, dryRun: false } });
    expect(parseBulkRequest("retry", { status: ["failed", "dead", "dead"], q: "  shop ", workerId: "wn-1", limit: 5, dryRun: true })).toEqual({
      ok: true, value: { status: ["failed", "dead"], q: "shop", workerId: "wn-1", limit: 5, dryRun: true },
    });
    expect(parseBulkRequest("cancel", { status: "queued", reason: "proxy down" })).toEqual({
      ok: true, value: { status: ["queued"], reason: "proxy down", limit: BULK_DEFAULT_LIMIT, dryRun: false },
    });
    // A blank search (an unset variable in a shell) would have meant "every job in the status".
    expect(parseBulkRequest("cancel", { status: "queued", q: "   " })).toMatchObject({ ok: false, error: { path: "q", message: expect.stringMatching(/blank/) } });
    expect(parseBulkRequest("cancel", { status: "queued", q: "" })).toMatchObject({ ok: false, error: { path: "q" } });
    // A NUL ended SQLite's pattern: "\u0000" matched every job.
    expect(parseBulkRequest("cancel", { status: "queued", q: "\u0000" })).toMatchObject({ ok: false, error: { path: "q", message: expect.stringMatching(/control character/) } });
    expect(parseBulkRequest("cancel", { status: "queued", q: "tag\u0000x" })).toMatchObject({ ok: false, error: { path: "q" } });
  });

  it("refuses a request without a status, or with one the action does not take: a bulk action never runs on every job", () => {
    expect(parseBulkRequest("retry", {})).toMatchObject({ ok: false, error: { path: "status", message: expect.stringMatching(/required/) } });
    expect(parseBulkRequest("retry", { status: [] })).toMatchObject({ ok: false, error: { path: "status" } });
    expect(parseBulkRequest("retry", { status: "completed" })).toMatchObject({ ok: false, error: { path: "status", message: expect.stringMatching(/failed, dead; got "completed"/) } });
    expect(parseBulkRequest("cancel", { status: ["queued", "dead"] })).toMatchObject({ ok: false, error: { path: "status", message: expect.stringMatching(/"dead"/) } });
    expect(parseBulkRequest("cancel", { status: [1] })).toMatchObject({ ok: false, error: { path: "status" } });
  });

  it("names the bad field: unknown ones, a reason on a retry, limits, ids, types", () => {
    const bad = (action: "retry" | "cancel", body: unknown) => {
      const r = parseBulkRequest(action, body);
      return r.ok ? "accepted" : r.error.path;
    };
    expect(bad("retry", { status: "dead", statuses: "x" })).toBe("statuses");
    expect(bad("retry", { status: "dead", reason: "no" })).toBe("reason");
    expect(bad("retry", { status: "dead", limit: 0 })).toBe("limit");
    expect(bad("retry", { status: "dead", limit: 10_001 })).toBe("limit");
    expect(bad("retry", { status: "dead", limit: 2.5 })).toBe("limit");
    expect(bad("retry", { status: "dead", limit: "5" })).toBe("limit");
    expect(bad("retry", { status: "dead", workerId: "bad id" })).toBe("workerId");
    expect(bad("retry", { status: "dead", q: "x".repeat(201) })).toBe("q");
    expect(bad("retry", { status: "dead", dryRun: "yes" })).toBe("dryRun");
    expect(bad("cancel", { status: "queued", reason: 5 })).toBe("reason");
    expect(bad("retry", [])).toBe("");
    expect(bad("retry", null)).toBe("");
  });
});

describe("confirmed jobs (jobIds)", () => {
  it("takes the confirmed ids that still match, in their order, and counts the others as moved on", () => {
    const r = parseBulkRequest("retry", { status: "dead", jobIds: ["b", "a", "b", "gone"] });
    if (!r.ok) throw new Error(r.error.message);
    expect(r.value.jobIds).toEqual(["b", "a", "gone"]);
    // "new" matches now but was not confirmed: not taken.
    expect(bulkTargets(r.value, ["new", "a", "b"])).toEqual({ ids: ["b", "a"], moved: 1 });
    expect(bulkTargets({}, ["new", "a"])).toEqual({ ids: ["new", "a"], moved: 0 });
    expect(parseBulkRequest("retry", { status: "dead", jobIds: [] })).toMatchObject({ ok: false, error: { path: "jobIds" } });
    expect(parseBulkRequest("retry", { status: "dead", jobIds: ["ok", "bad id"] })).toMatchObject({ ok: false, error: { path: "jobIds[1]" } });
    expect(describeBulk("cancel", 2, { done: 2, refused: 0, refusals: [], notDone: 0 }, 1)).toBe("cancelled 2 of 3 jobs; 1 no longer waiting or running");
  });
});

describe("runBulk", () => {
  const deferred = () => {
    let resolve!: (o: BulkItemOutcome) => void;
    const promise = new Promise<BulkItemOutcome>((r) => (resolve = r));
    return { promise, resolve };
  };

  it("sends every id, never more than `concurrency` at once, and counts done and refused (refusals listed in order, up to `listed`)", async () => {
    let inFlight = 0;
    let most = 0;
    const sent: string[] = [];
    const ids = Array.from({ length: 30 }, (_, i) => `j${i}`);
    const s = await runBulk(ids, async (id) => {
      sent.push(id);
      most = Math.max(most, ++inFlight);
      await new Promise((r) => setImmediate(r));
      inFlight--;
      return Number(id.slice(1)) % 3 === 0 ? { ok: false, code: "conflict", message: `${id} moved on` } : { ok: true };
    }, { concurrency: 4, listed: 3 });
    expect(most).toBe(4);
    expect(sent).toEqual(ids);
    expect(s).toEqual({
      done: 20, refused: 10, notDone: 0,
      refusals: [{ jobId: "j0", code: "conflict", message: "j0 moved on" }, { jobId: "j3", code: "conflict", message: "j3 moved on" }, { jobId: "j6", code: "conflict", message: "j6 moved on" }],
    });
  });

  it("stops sending at the first outcome that says the master cannot be asked; commands in flight are awaited and counted", async () => {
    const pending = new Map<string, ReturnType<typeof deferred>>();
    const sent: string[] = [];
    const run = runBulk(["a", "b", "c", "d", "e"], (id) => {
      sent.push(id);
      const d = deferred();
      pending.set(id, d);
      return d.promise;
    }, { concurrency: 2 });
    await new Promise((r) => setImmediate(r));
    expect(sent).toEqual(["a", "b"]);
    pending.get("a")!.resolve({ ok: false, code: "unavailable", message: "no master is answering", stop: true });
    await new Promise((r) => setImmediate(r));
    // "b" is still in flight, nothing new was sent.
    expect(sent).toEqual(["a", "b"]);
    pending.get("b")!.resolve({ ok: true });
    const s = await run;
    expect(sent).toEqual(["a", "b"]);
    expect(s).toEqual({ done: 1, refused: 0, refusals: [], notDone: 4, stopped: { code: "unavailable", message: "no master is answering" } });
  });

  it("counts a send that throws as a stop, and runs nothing for no ids", async () => {
    const s = await runBulk(["a", "b"], async () => {
      throw new Error("connection closed");
    }, { concurrency: 1 });
    expect(s).toEqual({ done: 0, refused: 0, refusals: [], notDone: 2, stopped: { code: "internal", message: "connection closed" } });
    expect(await runBulk([], async () => ({ ok: true }))).toEqual({ done: 0, refused: 0, refusals: [], notDone: 0 });
  });
});

describe("describeBulk", () => {
  it("says what was done, refused and left, and why it stopped", () => {
    expect(describeBulk("retry", 3, { done: 3, refused: 0, refusals: [], notDone: 0 })).toBe("retried 3 of 3 jobs");
    expect(describeBulk("cancel", 1, { done: 0, refused: 1, refusals: [], notDone: 0 })).toBe("cancelled 0 of 1 job; 1 refused");
    expect(describeBulk("retry", 10, { done: 2, refused: 1, refusals: [], notDone: 7, stopped: { code: "timeout", message: "no master answered" } }))
      .toBe("retried 2 of 10 jobs; 1 refused; 7 not done — stopped: no master answered");
  });
});

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningMaster } from "../src/main.ts";
import type { FakeWorker } from "./fake-worker.ts";
import { fakeWorker, foldJobs, masterIn, readLog, spawnChild } from "./helpers.ts";
import { lookupJob } from "../src/state.ts";

let nats: TestNats;
let master: RunningMaster;
let worker: FakeWorker;
beforeAll(async () => {
  nats = await startTestNats({ init: true });
  master = await masterIn(nats, "m-cli");
  worker = await fakeWorker(nats, {
    id: "w-cli", slots: 2, progressEveryMs: 0,
    behaviour: (j) => (j.spec.url?.includes("fail") ? { kind: "fail", retryable: false, afterMs: 50 } : { kind: "complete", afterMs: 50 }),
  });
});
afterAll(async () => {
  await worker?.stop({ deregister: true });
  await master?.stop();
  await nats?.stop();
});

async function troupe(...args: string[]) {
  const c = spawnChild(["bin/troupe.mjs", ...args], nats.env());
  const code = await new Promise<number | null>((r) => c.proc.once("exit", (code) => r(code)));
  return { code, output: c.output() };
}
const troupeSubmit = (...args: string[]) => troupe("submit", ...args);

// Each case starts `troupe submit` processes (tsx start-up takes seconds on a loaded machine).
const SLOW = 120_000;

describe("troupe submit", () => {
  it("--url --wait follows the job and exits 0 on completion", async () => {
    const r = await troupeSubmit("--url", "https://example.com/cli", "--priority", "7", "--wait");
    expect(r.code).toBe(0);
    const jobId = r.output.split("\n")[0] ?? "";
    expect(lookupJob(master.master.state, jobId)).toMatchObject({ status: "completed" });
    // The master keeps a finished job compact: its spec is in the log.
    expect(foldJobs(await readLog(master.master.nc)).jobs.get(jobId)).toMatchObject({ status: "completed", priority: 7 });
    expect(r.output).toMatch(/\[#+\] 100% completed/);
    // The result follows as one JSON line.
    const result = r.output.split("\n").find((l) => l.startsWith('{"data":'));
    expect(JSON.parse(result ?? "null")).toMatchObject({ data: expect.any(Object), screenshots: expect.any(Array) });
  }, SLOW);

  it("exits 1 when the job fails for good", async () => {
    const r = await troupeSubmit("--url", "https://example.com/fail", "--wait");
    expect(r.code).toBe(1);
    expect(r.output).toMatch(/failed: fake failure/);
  }, SLOW);

  it("--wait says why a job waits, from the streams: labels no live worker has (it said only 'queued', for ever)", async () => {
    const r = await troupeSubmit("--url", "https://example.com/labelled", "--labels", "gpu", "--wait", "--wait-timeout", "20000");
    expect(r.code).toBe(3);
    expect(r.output).toMatch(/queued — waiting: asks for label gpu, which no live worker has/);
    expect(r.output).toMatch(/still queued after 20000 ms/);
  }, SLOW);

  it("reads a job file, and names the bad field of an invalid one (exit 2, nothing submitted)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "troupe-submit-"));
    const good = join(dir, "job.json");
    writeFileSync(good, JSON.stringify({ url: "https://example.com/file", tags: ["from-file"] }));
    const ok = await troupeSubmit(good);
    expect(ok.code).toBe(0);
    expect(foldJobs(await readLog(master.master.nc)).jobs.get(ok.output.split("\n")[0] ?? "")?.tags).toEqual(["from-file"]);
    const bad = join(dir, "bad.json");
    writeFileSync(bad, JSON.stringify({ url: "https://example.com", maxAttempts: 99 }));
    let jobs = master.master.state.jobs.size + master.master.state.finished.size;
    const r = await troupeSubmit(bad);
    expect(r.code).toBe(2);
    expect(r.output).toMatch(/maxAttempts/);
    expect((await troupeSubmit("--url", "https://example.com", "--priority", "11")).code).toBe(2);
    expect((await troupeSubmit()).output).toMatch(/give a job file or --url/);
    const deep = join(dir, "deep.json");
    writeFileSync(deep, `{"url":"https://example.com","x":${"[".repeat(5000)}${"]".repeat(5000)}}`);
    const tooDeep = await troupeSubmit(deep);
    expect(tooDeep.code).toBe(2);
    expect(tooDeep.output).toMatch(/deep\.json is refused: payload nests objects and arrays deeper than \d+ levels/);
    // A Recorder export as saved (title and steps at the top) is the job's scenario.
    const recording = join(dir, "recording.json");
    writeFileSync(recording, JSON.stringify({ title: "a recording", steps: [{ type: "navigate", url: "https://example.com/recorded" }] }));
    const rec = await troupeSubmit(recording);
    expect(rec.code, rec.output).toBe(0);
    expect(foldJobs(await readLog(master.master.nc)).jobs.get(rec.output.split("\n")[0] ?? "")?.spec.scenario).toMatchObject({ title: "a recording" });
    jobs += 1;
    const bom = join(dir, "bom.json");
    writeFileSync(bom, `\uFEFF${JSON.stringify({ url: "https://example.com/bom" })}`);
    expect((await troupeSubmit(bom)).code).toBe(0);
    const badLabel = await troupeSubmit("--url", "https://example.com", "--labels", "eu,not ok");
    expect(badLabel.code).toBe(2);
    expect(badLabel.output).toMatch(/--labels: invalid label "not ok"/);
    const noLabel = await troupeSubmit("--url", "https://example.com", "--labels", " , ");
    expect(noLabel.code).toBe(2);
    expect(noLabel.output).toMatch(/--labels: give at least one label/);
    // A bound on a wait that is not asked for was taken silently (a review).
    const noWait = await troupeSubmit("--url", "https://example.com", "--wait-timeout", "5000");
    expect(noWait.code).toBe(2);
    expect(noWait.output).toMatch(/--wait-timeout bounds --wait: give --wait too/);
    // Bytes that are not UTF-8 (an encoded surrogate) are refused as the master refuses them; a refusal deep in the
    // file names where (they were read as U+FFFD, and the deep one said only "is refused").
    const notUtf8 = join(dir, "cesu.json");
    writeFileSync(notUtf8, Buffer.concat([Buffer.from('{"url":"https://example.com/x","idempotencyKey":"k'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]));
    const cesu = await troupeSubmit(notUtf8);
    expect(cesu.code).toBe(2);
    expect(cesu.output).toMatch(/cesu\.json is not valid UTF-8 text/);
    const proto = join(dir, "proto.json");
    writeFileSync(proto, '{"scenario":{"steps":[{"type":"navigate","url":"https://example.com"},{"type":"waitForElement","selectors":[["#a"]],"properties":{"__proto__":1}}]}}');
    const deepKey = await troupeSubmit(proto);
    expect(deepKey.code).toBe(2);
    expect(deepKey.output).toMatch(/proto\.json is refused: scenario\.steps\[1\]\.properties\.__proto__: a key named __proto__ is not allowed/);
    // A key given twice (a hand-edited file): JSON keeps the last silently, so it is refused, naming the key.
    const twice = join(dir, "twice.json");
    writeFileSync(twice, '{"url":"https://example.com/twice","timeoutMs":5000,"priority":3,"timeoutMs":600000}');
    const dup = await troupeSubmit(twice);
    expect(dup.code).toBe(2);
    expect(dup.output).toMatch(/twice\.json is refused: timeoutMs: this key appears twice in one object \(JSON keeps only the last\); give it once/);
    expect(master.master.state.jobs.size + master.master.state.finished.size).toBe(jobs + 1); // the BOM file's job
  }, SLOW);

  it("troupe cancel / retry / drain / resume send the master's commands and exit by its answer", async () => {
    const queued = await troupeSubmit("--url", "https://example.com/to-cancel", "--labels", "nobody-has-this");
    const id = queued.output.split("\n")[0] ?? "";
    const cancel = await troupe("cancel", id, "--reason", "from the shell");
    expect(cancel.code, cancel.output).toBe(0);
    // Each says what it did (they printed nothing).
    expect(cancel.output.trim()).toBe(`job ${id} cancelled`);
    expect(foldJobs(await readLog(master.master.nc)).jobs.get(id)?.status).toBe("cancelled");
    const again = await troupe("cancel", id);
    expect(again.code).toBe(1);
    expect(again.output).toMatch(/refused \(conflict\) jobId: job \S+ is cancelled/);
    const failed = await troupeSubmit("--url", "https://example.com/fail-then-retry", "--wait");
    const failedId = failed.output.split("\n")[0] ?? "";
    expect(failed.code).toBe(1);
    const retried = await troupe("retry", failedId);
    expect(retried.code).toBe(0);
    expect(retried.output.trim()).toBe(`job ${failedId} redriven: a new attempt is queued`);
    expect(foldJobs(await readLog(master.master.nc)).jobs.get(failedId)?.attempt).toBe(2);
    const ghost = await troupe("drain", "no-such-worker");
    expect(ghost.code).toBe(1);
    expect(ghost.output).toMatch(/refused \(not-found\)/);
    // Drain and resume the worker from the shell: the master's view follows (the resume is its registration).
    const drained = await troupe("drain", "w-cli", "--reason", "patching");
    expect(drained.code).toBe(0);
    expect(drained.output.trim()).toBe("worker w-cli draining: it takes no new jobs and finishes the ones it runs (troupe resume w-cli undoes it)");
    await waitFor("draining", () => master.master.state.workers.get("w-cli")?.lifecycle === "draining");
    const resumed = await troupe("resume", "w-cli");
    expect(resumed.code).toBe(0);
    expect(resumed.output.trim()).toBe("worker w-cli takes jobs again");
    await waitFor("online again", () => master.master.state.workers.get("w-cli")?.lifecycle === "online");
    expect((await troupe("resume", "no-such-worker")).output).toMatch(/refused \(not-found\)/);
    expect((await troupe("resume")).code).toBe(2);
    expect((await troupe("cancel")).code).toBe(2);
    expect((await troupe("cancel", "bad id!")).output).toMatch(/jobId/);
  }, SLOW);

  it("--labels asks for workers with all those labels (workerLabels in the job's spec)", async () => {
    const r = await troupeSubmit("--url", "https://example.com/labelled", "--labels", "region=eu, gpu");
    expect(r.code).toBe(0);
    const job = foldJobs(await readLog(master.master.nc)).jobs.get(r.output.split("\n")[0] ?? "");
    expect(job?.spec.workerLabels).toEqual(["region=eu", "gpu"]);
    // No worker here has them: it waits.
    expect(job?.status).toBe("queued");
  }, SLOW);
});

describe("troupe submit while no master listens", () => {
  let bare: TestNats;
  const late: RunningMaster[] = [];
  beforeAll(async () => {
    bare = await startTestNats({ init: true });
  });
  afterAll(async () => {
    for (const m of late) await m.stop();
    await bare?.stop();
  });

  it("waits for a master that is starting (a restart's gap) and submits to it (it failed at once: a chaos soak)", async () => {
    const c = spawnChild(["bin/troupe.mjs", "submit", "--url", "https://example.com/gap", "--answer-timeout", "60000"], bare.env());
    const exited = new Promise<number | null>((r) => c.proc.once("exit", (code) => r(code)));
    const waiting = waitFor("the submit to say it waits for a master", () => c.output().includes("no master is listening"), SLOW, 50);
    expect(await Promise.race([waiting.then(() => "waiting"), exited.then((code) => `exited ${code}: ${c.output()}`)])).toBe("waiting");
    const m = await masterIn(bare, "m-late");
    late.push(m);
    expect(await exited, c.output()).toBe(0);
    const jobId = c.output().split("\n").find((l) => /^[A-Za-z0-9_-]+$/.test(l)) ?? "";
    expect(lookupJob(m.master.state, jobId) ?? foldJobs(await readLog(m.master.nc)).jobs.get(jobId)).toBeDefined();
  }, SLOW);

  it("gives up after --answer-timeout when none comes, saying how long nobody listened; nothing is recorded", async () => {
    for (const m of late.splice(0)) await m.stop();
    const nc = await bare.connect("master");
    const submitted = async () => (await readLog(nc)).filter((l) => l.event.type === "job.submitted").length;
    const before = await submitted();
    const c = spawnChild(["bin/troupe.mjs", "submit", "--url", "https://example.com/none", "--answer-timeout", "1500"], bare.env());
    const code = await new Promise<number | null>((r) => c.proc.once("exit", (code) => r(code)));
    expect(code).toBe(1);
    expect(c.output()).toMatch(/no master is listening on troupe\.rpc\.jobs\.submit; waiting up to 1\.5 s/);
    expect(c.output()).toMatch(/nobody listened on troupe\.rpc\.jobs\.submit for 1\.5 s/);
    expect(await submitted()).toBe(before);
  }, SLOW);
});

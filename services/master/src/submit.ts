import { readFileSync } from "node:fs";
import { DeliverPolicy, jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { decodeEvent, decodeReply, evolveJob, MAX_COMMAND_BYTES, newId, parseJsonObject, parseLabels, subjectsFor, validateCommand, whyWaiting, type JobView, type TroupeEvent } from "@troupe/events";
import { connectAs, requestAgainOnTimeout, storeNames, UsageError, type OptionValues } from "@troupe/events/node";
import { readFleet } from "./fleet-read.ts";
import { exitCodeFor, progressLine } from "./progress.ts";
import type { submitOptions } from "./submit-cli.ts";

type Values = OptionValues<typeof submitOptions>;

/** The request body from a job file and/or flags, validated with the contract (a bad one is a usage error). */
export function buildSubmitBody(v: Pick<Values, "url" | "priority" | "browser" | "idempotencyKey"> & Partial<Pick<Values, "labels">>, file?: string, readFile = (f: string): Uint8Array | string => readFileSync(f === "-" ? 0 : f)): Record<string, unknown> {
  let body: Record<string, unknown> = {};
  if (file !== undefined) {
    let raw: Uint8Array | string;
    try {
      raw = readFile(file);
    } catch (e) {
      throw new UsageError(`cannot read ${file}: ${(e as Error).message}`);
    }
    // Bytes that are not UTF-8 refused as the master refuses them (read as text they became U+FFFD silently; an attack).
    let text: string;
    try {
      text = typeof raw === "string" ? raw : new TextDecoder("utf-8", { fatal: true }).decode(raw);
    } catch {
      throw new UsageError(`${file} is not valid UTF-8 text`);
    }
    // The master's own limits (size, nesting), checked before parsing: a file nested 200,000 deep overflowed the
    // stack and was reported as "no answer from a master". A byte-order mark, as editors on Windows write, is no error.
    const parsed = parseJsonObject(text.replace(/^\uFEFF/, ""), MAX_COMMAND_BYTES);
    if (!parsed.ok) {
      const why = parsed.error.code === "not-json" ? "is not JSON" : parsed.error.code === "not-object" ? "is not a JSON object (a jobs.submit body)" : "is refused";
      // The codec's message starts with its own "payload is not JSON: " (it read "… is not JSON: payload is not JSON: …").
      throw new UsageError(`${file} ${why}: ${parsed.error.path ? `${parsed.error.path}: ` : ""}${parsed.error.message.replace(/^payload is not JSON: /, "")}`);
    }
    body = parsed.value;
    // A Chrome DevTools Recorder export (or a bare step list object) as saved: its steps at the top, as the Submit
    // page takes it pasted. Read as the job's scenario (it was refused as "title: unknown property").
    if (Array.isArray(body.steps) && body.scenario === undefined && body.url === undefined) body = { scenario: body };
  } else if (v.url === undefined) {
    throw new UsageError("give a job file or --url");
  }
  if (v.url !== undefined) body.url = v.url;
  if (v.priority !== undefined) body.priority = v.priority;
  if (v.browser !== undefined) body.browser = v.browser;
  if (v.labels !== undefined) {
    try {
      const labels = parseLabels(v.labels);
      // `--labels ''` (a variable that was empty) must not quietly let any worker run the job.
      if (!labels.length) throw new Error("give at least one label (leave --labels out for a job any worker may run)");
      body.workerLabels = labels;
    } catch (e) {
      throw new UsageError(`--labels: ${(e as Error).message}`);
    }
  }
  if (v.idempotencyKey !== undefined) body.idempotencyKey = v.idempotencyKey;
  const r = validateCommand("jobs.submit", body);
  if (!r.ok) throw new UsageError(`${r.error.path || "job"}: ${r.error.message}`);
  return body;
}

export async function submitMain(v: Values, file?: string): Promise<number> {
  // Taken silently, it read as a bound on a wait that never happens (a review).
  if (v.waitTimeout !== undefined && !v.wait) throw new UsageError("--wait-timeout bounds --wait: give --wait too, or leave it out");
  const body = buildSubmitBody(v, file);
  const nc = await connectAs({ url: v.natsUrl, ca: v.natsCa, role: "ui", dataDir: v.dataDir, name: "troupe-submit" });
  try {
    const s = subjectsFor(v.prefix);
    // Always keyed: a request that times out may still have been recorded (a master paused, not dead), and
    // asking again with the same key cannot make a second job.
    const generatedKey = body.idempotencyKey === undefined;
    if (generatedKey) body.idempotencyKey = `cli-${newId()}`;
    let reply;
    try {
      const m = await requestAgainOnTimeout(nc, s.rpc("jobs.submit"), JSON.stringify(body), {
        timeoutMs: v.answerTimeout,
        onRetry: (next, tries) => console.error(`troupe submit: no answer within ${v.answerTimeout / 1000} s; asking again with the same idempotency key (${next}/${tries})`),
        // A master restarting is gone for seconds: a submit in that gap failed at once (a chaos soak).
        waitForResponderMs: v.answerTimeout,
        onNoResponder: () => console.error(`troupe submit: no master is listening on ${s.rpc("jobs.submit")}; waiting up to ${v.answerTimeout / 1000} s for one`),
      });
      reply = decodeReply("jobs.submit", m.data);
    } catch (e) {
      const msg = (e as Error).message;
      // Silence may hide a recorded job; "no responders" (no master listening) records nothing.
      const maybeRecorded = /timeout/i.test(msg) ? ` The job may have been recorded all the same: to try again without a duplicate, add --idempotency-key ${String(body.idempotencyKey)}` : "";
      console.error(`troupe submit: no answer from a master on ${s.rpc("jobs.submit")}: ${msg} (is \`troupe master\` running?).${maybeRecorded}`);
      return 1;
    }
    if (!reply.ok) {
      console.error(`troupe submit: invalid reply from the master: ${reply.error.message}`);
      return 1;
    }
    if (!reply.value.ok) {
      const e = reply.value.error;
      // The master may not know whether the job was recorded (its append got no confirmation): the key this command
      // made up is the way to ask again without a second job.
      const again = e.code === "unavailable" && generatedKey ? ` To try again without a duplicate, add --idempotency-key ${String(body.idempotencyKey)}` : "";
      console.error(`troupe submit: refused (${e.code})${e.field ? ` ${e.field}:` : ""} ${e.message}${again}`);
      return e.code === "invalid" ? 2 : 1;
    }
    console.log(reply.value.jobId);
    if (reply.value.duplicate && !generatedKey) console.error("(already submitted with this idempotency key)");
    if (!v.wait) return 0;
    return await follow(nc, v.prefix, reply.value.jobId, v.waitTimeout ?? 0);
  } finally {
    await nc.close();
  }
}

/** How long a job waits before `--wait` asks the streams why, and how often it asks again while it waits. */
const WHY_AFTER_MS = 2_000;
const WHY_EVERY_MS = 10_000;

/** Folds the job's events (from its first one, then live) and draws the bar until it settles. */
async function follow(nc: NatsConnection, prefix: string, jobId: string, timeoutMs: number): Promise<number> {
  const s = subjectsFor(prefix);
  const js = jetstream(nc);
  const consumer = await js.consumers.get(storeNames(prefix).events, { filter_subjects: s.jobEvents(jobId), deliver_policy: DeliverPolicy.All });
  const messages = await consumer.consume();
  const tty = process.stderr.isTTY;
  let job: JobView | undefined;
  let last = "";
  let code: number | undefined;
  /** Why the job waits, as the streams last said (none while it runs or when nothing stands in its way). */
  let why: string | null = null;
  let whyTimer: NodeJS.Timeout | undefined;
  let whyFailed = false;
  let done = false;
  const draw = () => {
    if (!job) return;
    const line = progressLine(job, 30, why);
    if (line !== last) {
      process.stderr.write(tty ? `\r\x1b[2K${line}` : `${line}\n`);
      last = line;
    }
  };
  const waiting = () => job?.status === "queued" || job?.status === "requeued";
  let asking = false;
  /** One timer at a time (a job event during a read must not start a second loop of reads), never holding the process. */
  const askIn = (ms: number) => {
    clearTimeout(whyTimer);
    whyTimer = setTimeout(() => void ask(), ms);
    whyTimer.unref();
  };
  const ask = async () => {
    whyTimer = undefined;
    if (!waiting() || done || asking) return;
    asking = true;
    try {
      const fleet = await readFleet(nc, prefix);
      if (done) return;
      why = waiting() && job ? whyWaiting(job, fleet, Date.now(), 0) : null;
      draw();
    } catch (e) {
      // Said once: the bar goes on without the reason (an older server, a user without stream reads).
      if (done) return;
      if (!whyFailed) process.stderr.write(`${tty ? "\n" : ""}troupe submit: cannot read the workers to say why the job waits: ${(e as Error).message}\n`);
      whyFailed = true;
      last = "";
    } finally {
      asking = false;
    }
    if (waiting() && !done) askIn(WHY_EVERY_MS);
  };
  const timer = timeoutMs > 0 ? setTimeout(() => {
    code = 3;
    void messages.close();
  }, timeoutMs) : undefined;
  for await (const m of messages) {
    const d = decodeEvent(m.subject, m.data, { subjects: s });
    if (!d.ok) {
      console.error(`\nskipping an invalid event at sequence ${m.seq}: ${d.error.message}`);
      continue;
    }
    const r = evolveJob(job, d.value as Extract<TroupeEvent, { type: `job.${string}` }>);
    if (!r.ok) continue; // fenced out, exactly as the master and projector do
    job = r.job;
    if (!waiting()) {
      why = null;
      clearTimeout(whyTimer);
      whyTimer = undefined;
    } else if (whyTimer === undefined && !asking) askIn(WHY_AFTER_MS);
    draw();
    code = exitCodeFor(job);
    if (code !== undefined) break;
  }
  done = true;
  clearTimeout(whyTimer);
  clearTimeout(timer);
  await messages.close();
  if (tty) process.stderr.write("\n");
  if (code === 3) console.error(`troupe submit: still ${job?.status ?? "unknown"} after ${timeoutMs} ms`);
  // What it got, as one JSON line after the job id, for a script to read (the bar went to stderr).
  if (job?.status === "completed") console.log(JSON.stringify({ data: job.result?.data ?? {}, screenshots: job.result?.screenshots ?? [] }));
  return code ?? 1;
}

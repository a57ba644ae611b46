import { json, type RequestHandler } from "@sveltejs/kit";
import {
  BULK_MAX_LIMIT, bulkTargets, describeBulk, isValidId, liveOffers, parseBulkRequest, parseJsonObject, parseStatusList, runBulk, WORKER_STATUSES, type BulkAction, type JobStatus, type WorkerStatusView, waitingFor,
} from "@troupe/events";
import { createLogger, isNatsOutage } from "@troupe/events/node";
import { matchingJobIds } from "../../../../services/projector/src/read-models.ts";
import { workerDto } from "../workers.ts";
import { RECENT_JOBS } from "../jobs.ts";
import { DEFAULT_RANGE, isChartRange, rangeError, type ChartRange } from "../chart-range.ts";
import { RECENT_MINUTES } from "../recent.ts";
import { TOP_ERRORS } from "../errors.ts";
import { ack, bulkCommand, submitJob, validate } from "./commands.ts";
import { context } from "./context.ts";
import { api, ApiError, checkQuery, intParam, readBody, STATUS_OF } from "./http.ts";
import { artifactGone, artifactRefusal } from "./artifact-check.ts";
import { idleLimited } from "./idle-limit.ts";
import { waitForCheckpoints } from "./catch-up.ts";
import { answeredWithin } from "./pages.ts";
import { CATCH_UP_MAX_WAIT_MS, CATCH_UP_WAIT_MS } from "../live/catch-up.ts";

/** How long an artifact response waits for its next chunk from the store before it fails. */
const ARTIFACT_IDLE_MS = 15_000;

/** The REST API's handlers; each route file under routes/api re-exports one. */

function idParam(value: string | undefined, what: "job" | "worker"): string {
  if (!isValidId(value)) throw new ApiError("invalid", `${what} id must be 1-64 characters of [A-Za-z0-9_-], got ${JSON.stringify(value)}`, `${what}Id`);
  return value;
}

/**
 * An optional JSON body for actions (`{ "reason": "..." }`); empty is fine. Read as a submit's body is (parseJsonObject):
 * a key given twice let `{"dryRun":true,"dryRun":false}` cancel for real, and deep nesting overflowed the validator's
 * JSON.stringify into a 500 (a review).
 */
async function optionalBody(request: Request, max: number): Promise<Record<string, unknown>> {
  const text = await readBody(request, max);
  if (!text.trim()) return {};
  const r = parseJsonObject(text, max);
  if (!r.ok) {
    const what = r.error.message.replace(/^payload/, "body");
    throw new ApiError(r.error.code === "too-large" ? "too-large" : "invalid", r.error.path ? `${r.error.path}: ${what}` : what, r.error.path || undefined);
  }
  return r.value;
}

/** The body with the path's id added: one naming another (or not a string) is refused, not overridden by the path. */
function withPathId(body: Record<string, unknown>, key: "jobId" | "workerId", id: string): Record<string, unknown> {
  if (key in body && body[key] !== id) throw new ApiError("invalid", `${key}: the path names ${JSON.stringify(id)}, the body ${JSON.stringify(body[key])}; leave it out of the body`, key);
  return { ...body, [key]: id };
}

export const listWorkers: RequestHandler = ({ url }) =>
  api(async () => {
    const { cfg, reads } = context();
    checkQuery(url, ["status", "q"]);
    const status = url.searchParams.get("status");
    if (status && !(WORKER_STATUSES as readonly string[]).includes(status)) {
      throw new ApiError("invalid", `status: expected one of ${WORKER_STATUSES.join(", ")}, got ${JSON.stringify(status)}`, "status");
    }
    const now = Date.now();
    const r = reads();
    // The workers and their recent minutes on one snapshot: an outcome committed between two reads would show in one only.
    let workers = r.snapshot(() => {
      const recent = r.recentOutcomes(now);
      return r.listWorkers().map((w) => workerDto(w, now, cfg.suspectAfterMs, recent.get(w.id)));
    });
    // Presence (suspect) depends on the clock, so the status filter applies after it.
    if (status) workers = workers.filter((w) => w.status === (status as WorkerStatusView));
    const q = url.searchParams.get("q")?.toLowerCase();
    // As the jobs' search: a control character is refused, not searched for.
    if (q !== undefined && /[\u0000-\u001f\u007f]/.test(q)) throw new ApiError("invalid", "q: the search holds a control character", "q");
    if (q) workers = workers.filter((w) => w.name.toLowerCase().includes(q) || w.id.toLowerCase().includes(q) || w.connection.ip.includes(q));
    return json({ success: true, workers });
  });

/** `?range=` of the endpoints with series (1h by default); one it does not take is a 400, not the default (a page falls back instead). */
function rangeParam(url: URL): ChartRange {
  const raw = url.searchParams.get("range");
  if (raw === null || raw === "") return DEFAULT_RANGE;
  if (!isChartRange(raw)) throw new ApiError("invalid", rangeError(raw), "range");
  return raw;
}

export const getWorker: RequestHandler = ({ params, url }) =>
  api(async () => {
    const { cfg, reads } = context();
    const id = idParam(params.id, "worker");
    checkQuery(url, ["range"]);
    const range = rangeParam(url);
    const r = reads();
    return r.snapshot(() => {
      const w = r.getWorker(id);
      if (!w) throw new ApiError("not-found", `no worker ${id}`);
      const chart = r.workerChart(id, range);
      // recentJobs: the worker page's list (job_attempts): the jobs that ran here, wherever they are now.
      const now = Date.now();
      return json({ success: true, worker: workerDto(w, now, cfg.suspectAfterMs, r.workerRecent(id, now)), range, bucketMs: chart.bucketMs, series: chart.points, recentJobs: r.workerJobs(id, RECENT_JOBS) });
    });
  });

/** `POST /api/workers/:id/drain|resume`: the body (optional) validated as the command, the worker id from the path. */
const workerAction = (name: "workers.drain" | "workers.resume"): RequestHandler => ({ params, request }) =>
  api(async () => {
    const { cfg, nats } = context();
    const body = await optionalBody(request, cfg.maxBodyBytes);
    await ack(nats, cfg, name, validate(name, withPathId(body, "workerId", idParam(params.id, "worker"))));
    return json({ success: true });
  });

export const drainWorker = workerAction("workers.drain");
export const resumeWorker = workerAction("workers.resume");

export const listJobs: RequestHandler = ({ url }) =>
  api(async () => {
    const { reads } = context();
    checkQuery(url, ["status", "q", "workerId", "limit", "cursor"], { status: "several statuses go comma-separated in one: status=failed,dead" });
    // One status, or several comma-separated (failed,dead); a blank one among them is an error, not "every job".
    const raw = url.searchParams.get("status");
    let statuses: JobStatus[] = [];
    try {
      if (raw) statuses = parseStatusList(raw);
    } catch (err) {
      throw new ApiError("invalid", `status: ${(err as Error).message}`, "status");
    }
    const status = statuses.length === 0 ? undefined : statuses.length === 1 ? statuses[0] : statuses;
    const cursor = url.searchParams.get("cursor") || undefined;
    if (cursor !== undefined && cursor.length > 200) throw new ApiError("invalid", "cursor: not a cursor this API returned", "cursor");
    const q = url.searchParams.get("q") || undefined;
    const workerId = url.searchParams.get("workerId") || undefined;
    if (workerId !== undefined) idParam(workerId, "worker");
    const page = reads().listJobs({
      limit: intParam(url, "limit", 50, 500),
      ...(status ? { status } : {}),
      ...(cursor ? { cursor } : {}),
      ...(q ? { q } : {}),
      ...(workerId ? { workerId } : {}),
    });
    return json({ success: true, jobs: page.jobs, nextCursor: page.nextCursor });
  });

export const getJob: RequestHandler = ({ params }) =>
  api(async () => {
    const id = idParam(params.id, "job");
    const reads = context().reads();
    const job = reads.getJob(id);
    if (!job) throw new ApiError("not-found", `no job ${id}`);
    // What a waiting job asks for that no live worker has, as its page says it (an API or CLI user could not see why it waited).
    const waiting = waitingFor(job, liveOffers(reads.listWorkers(), Date.now(), context().cfg.suspectAfterMs));
    return json({ success: true, job, ...(waiting ? { waitingFor: waiting } : {}) });
  });

export const postJob: RequestHandler = ({ request }) =>
  api(async () => {
    const { cfg, nats } = context();
    const cmd = validate("jobs.submit", await readBody(request, cfg.maxBodyBytes));
    const r = await submitJob(nats, cfg, cmd);
    return json({ success: true, jobId: r.jobId, ...(r.duplicate ? { duplicate: true } : {}) }, { status: r.duplicate ? 200 : 201 });
  });

export const cancelJob: RequestHandler = ({ params, request }) =>
  api(async () => {
    const { cfg, nats } = context();
    const body = await optionalBody(request, cfg.maxBodyBytes);
    await ack(nats, cfg, "jobs.cancel", validate("jobs.cancel", withPathId(body, "jobId", idParam(params.id, "job"))));
    return json({ success: true });
  });

export const retryJob: RequestHandler = ({ params, request }) =>
  api(async () => {
    const { cfg, nats } = context();
    // Validated like cancel's: a field retry does not take (a new priority) is refused, not silently dropped.
    const body = await optionalBody(request, cfg.maxBodyBytes);
    await ack(nats, cfg, "jobs.retry", validate("jobs.retry", withPathId(body, "jobId", idParam(params.id, "job"))));
    return json({ success: true });
  });

const log = createLogger("ui");

/**
 * `POST /api/bulk/retry|cancel`: the action for every job of the read models that matches the body's filter
 * (newest first, up to `limit`), one command per job as the single endpoints send it, 8 at a time. The master
 * decides each as it would a single one, so a job that moved on since the read models were read is refused
 * (counted and listed), not acted on. `dryRun` lists the matching ids and sends nothing.
 */
export const bulkJobs: RequestHandler = ({ params, request }) =>
  api(async () => {
    const { cfg, nats, reads } = context();
    const action = params.action;
    if (action !== "retry" && action !== "cancel") throw new ApiError("not-found", `no bulk action ${JSON.stringify(action)}: there are retry and cancel`);
    const parsed = parseBulkRequest(action, await optionalBody(request, cfg.maxBodyBytes));
    if (!parsed.ok) {
      const { path, message } = parsed.error;
      throw new ApiError("invalid", path ? `${path}: ${message}` : message, path || undefined);
    }
    const req = parsed.value;
    // No read models yet is not "no jobs match": say so, as the CLI does.
    if (!reads().ready()) throw new ApiError("unavailable", `no read models at ${cfg.dbPath} yet: start the projector (troupe projector)`);
    // Confirmed ids are looked for among every match (up to the cap), not only the newest `limit`.
    const found = matchingJobIds(reads(), req, req.jobIds ? BULK_MAX_LIMIT : req.limit);
    const { ids, moved } = bulkTargets(req, found.ids);
    const more = req.jobIds ? false : found.more;
    const base = { action, matched: ids.length, more, ...(req.jobIds ? { moved } : {}) };
    if (req.dryRun) return json({ success: true, ...base, dryRun: true, jobIds: ids });
    const summary = await runBulk(ids, (jobId) => bulkCommand(nats, cfg, action as BulkAction, jobId, req.reason));
    const line = describeBulk(action, ids.length, summary, moved);
    log.info({ action, filter: { status: req.status, q: req.q, workerId: req.workerId }, matched: ids.length, moved, more, done: summary.done, refused: summary.refused, notDone: summary.notDone }, `bulk ${action}: ${line}`);
    if (summary.stopped) {
      const { code } = summary.stopped;
      return json({ success: false, error: { code, message: line }, ...base, ...summary }, { status: STATUS_OF[code] ?? 503 });
    }
    return json({ success: true, ...base, ...summary });
  });

export const getStats: RequestHandler = ({ url }) =>
  api(async () => {
    checkQuery(url, ["range"]);
    const range = rangeParam(url);
    const r = context().reads();
    return r.snapshot(() => {
      const chart = r.fleetChart(range);
      return json({ success: true, stats: r.stats(), range, bucketMs: chart.bucketMs, series: chart.points, projector: r.projector() });
    });
  });

/** Longest window `GET /api/errors` groups (24 h; the read models keep every attempt, the read is bounded by MAX_GROUPED). */
export const ERRORS_MAX_MINUTES = 1440;
/** Most groups `GET /api/errors` returns. */
export const ERRORS_MAX_LIMIT = 50;

/**
 * `GET /api/errors?minutes=60&limit=5`: the failed attempts of the last `minutes` (1–1440, default 60: the minute in
 * progress and the ones before it, as the workers' recent rates) grouped by error code and normalised message, the
 * `limit` (1–50, default 5) largest; the Overview's "Top errors" (ui/src/lib/errors.ts).
 */
export const getErrors: RequestHandler = ({ url }) =>
  api(async () => {
    checkQuery(url, ["minutes", "limit"]);
    const minutes = intParam(url, "minutes", RECENT_MINUTES, ERRORS_MAX_MINUTES);
    const limit = intParam(url, "limit", TOP_ERRORS, ERRORS_MAX_LIMIT);
    return json({ success: true, ...context().reads().topErrors({ minutes, limit }) });
  });

/**
 * `GET /api/catch-up?waitMs=`: a page's catch-up asks this once its live subscription is flushed, and reloads when it
 * answers. The streams' heads are read now, after that subscription: what comes later reaches the page live, what
 * is at or before them is in SQLite once the projector's checkpoints reach them. Waits for that at most `waitMs`
 * (default 5 s, 1–10,000), then answers `caughtUp: false` with how many events the read models are behind.
 */
export const getCatchUp: RequestHandler = ({ url, request }) =>
  api(async () => {
    const { nats, reads } = context();
    checkQuery(url, ["waitMs"]);
    const waitMs = intParam(url, "waitMs", CATCH_UP_WAIT_MS, CATCH_UP_MAX_WAIT_MS);
    // Bounded: a NATS that does not answer (down, reconnecting) must not hold the page's catch-up for ever.
    const heads = await answeredWithin(() => nats.streamHeads(), STREAM_HEADS_MS).catch((e: Error) => {
      throw new ApiError("unavailable", `could not read where the event streams end: ${e.message}`);
    });
    return json({ success: true, ...(await waitForCheckpoints(heads, () => reads().projector(), waitMs, request.signal)) });
  });

/** How long the catch-up check waits for NATS to say where the streams end. */
const STREAM_HEADS_MS = 3000;

/** A call to the artifact store: NATS not answering is a 503 to try again, not a 500 (a bug's) (a review). */
async function fromStore<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (isNatsOutage(e)) throw new ApiError("unavailable", `the object store did not answer (could not ${what} the artifact): ${(e as Error).message}`);
    throw e;
  }
}

/** Screenshots: streamed from the object store, never buffered whole. */
export const getArtifact: RequestHandler = ({ params }) =>
  api(async () => {
    const name = params.name ?? "";
    if (!/^[A-Za-z0-9_.\/-]{1,300}$/.test(name) || name.includes("..")) throw new ApiError("invalid", `invalid artifact name ${JSON.stringify(name)}`, "name");
    let store;
    try {
      store = await context().nats.artifacts();
    } catch (e) {
      throw new ApiError("unavailable", `object store not reachable: ${(e as Error).message}`);
    }
    // Workers write this store, and a worker credential may forge metadata for a name it can guess (docs/security.md).
    const info = await fromStore("read", () => store.info(name));
    const refused = artifactRefusal(name, info);
    if (refused || !info) throw new ApiError("not-found", refused ?? `no artifact ${name}`);
    const gone = artifactGone(name, info, await fromStore("count the chunks of", () => context().nats.artifactChunksStored(info.nuid)));
    if (gone) throw new ApiError("gone", gone);
    const obj = await fromStore("open", () => store.get(name));
    if (!obj) throw new ApiError("not-found", `no artifact ${name}`);
    const changed = artifactRefusal(name, info, obj.info);
    if (changed) {
      await obj.data.cancel().catch(() => undefined);
      throw new ApiError("not-found", changed);
    }
    const type = name.endsWith(".png") ? "image/png" : name.endsWith(".jpg") || name.endsWith(".jpeg") ? "image/jpeg" : name.endsWith(".json") ? "application/json" : "application/octet-stream";
    // A chunk removed by the retention between the count and the read would leave get() waiting for it forever.
    return new Response(idleLimited(obj.data, ARTIFACT_IDLE_MS, `artifact ${name}`), {
      // Artifacts are written by workers: never let a browser read one as anything but what its name says, nor run it as a page.
      headers: {
        "content-type": type, "content-length": String(obj.info.size), "cache-control": "private, max-age=3600, immutable",
        "x-content-type-options": "nosniff", "content-security-policy": "default-src 'none'; sandbox",
      },
    });
  });

/** Any method a route does not serve: 405 with the `Allow` header HTTP asks for (HEAD comes with GET). */
export function methodNotAllowed(...served: ("GET" | "POST")[]): RequestHandler {
  const allow = served.flatMap((m) => (m === "GET" ? ["GET", "HEAD"] : [m])).join(", ");
  return async ({ request, url }) => {
    const res = await api(async () => {
      throw new ApiError("method-not-allowed", `${request.method} is not allowed on ${url.pathname} (it takes ${allow})`);
    });
    res.headers.set("allow", allow);
    return res;
  };
}

export const notFound: RequestHandler = ({ url }) =>
  api(async () => {
    throw new ApiError("not-found", `no API endpoint ${url.pathname}`);
  });

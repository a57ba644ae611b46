import { attemptRecordOf, JOB_STATUSES, parseStatusList, type WorkerJob } from "@troupe/events";
import { bool, defineCommand, int, str, UsageError } from "@troupe/events/node";
import { dbPathFor } from "../../services/projector/src/db-file.ts";
import { openReadModels } from "../../services/projector/src/read-models.ts";
import { ago, duration } from "../../ui/src/lib/format.ts";
import { attemptText, laterText } from "../../ui/src/lib/jobs.ts";
import { noReadModels, printTable } from "./workers.ts";

const WORKER_ID = { metavar: "<id>", pattern: /^[A-Za-z0-9_-]{1,64}$/, patternHelp: "a worker id" };

export const command = defineCommand({
  name: "jobs",
  summary: "List jobs (newest first) from the projector's read models; --cursor pages on.",
  options: {
    dataDir: str("data directory", { env: "TROUPE_DATA_DIR", default: ".troupe", metavar: "<dir>" }),
    db: str("read-model database (default <data dir>/readmodels.sqlite)", { env: "TROUPE_PROJECTOR_DB", metavar: "<file>" }),
    status: str(`only jobs in this status, or in any of several comma-separated (${JOB_STATUSES.join(", ")})`, { metavar: "<status>" }),
    search: str("part of an id, url or tag", { metavar: "<text>" }),
    worker: str("only jobs whose current (last) worker is this one", WORKER_ID),
    ranOn: str("the jobs that ran on this worker, wherever they are now (a job that failed here and completed elsewhere too), newest attempt here first, with what came of it here: the dashboard worker page's Recent jobs; takes --limit and --json only", WORKER_ID),
    limit: int("jobs per page", { default: 20, min: 1, max: 500 }),
    cursor: str("the cursor printed under the previous page", { metavar: "<cursor>" }),
    json: bool("print the GET /api/jobs JSON shape", { default: false }),
  },
  async run({ values: v }) {
    let statuses: ReturnType<typeof parseStatusList> = [];
    try {
      if (v.status !== undefined) statuses = parseStatusList(v.status);
    } catch (err) {
      throw new UsageError(`--status: ${(err as Error).message}`);
    }
    // Named as the user gave it (the read models' check said "q:", and exit 1).
    if (v.search !== undefined && /[\u0000-\u001f\u007f]/.test(v.search)) throw new UsageError("--search: the search holds a control character");
    if (v.ranOn !== undefined) {
      // Its list has no paging nor filters of its own: a filter taken silently would read as applied.
      const other = (["status", "search", "worker", "cursor"] as const).filter((k) => v[k] !== undefined);
      if (other.length) throw new UsageError(`--ran-on lists the jobs that ran on a worker, newest first, up to --limit: it takes no ${other.map((k) => `--${k}`).join(", ")}`);
    }
    const rm = openReadModels(dbPathFor(v.dataDir, v.db));
    try {
      if (!rm.ready()) {
        console.error(noReadModels("jobs", dbPathFor(v.dataDir, v.db)));
        return 1;
      }
      if (v.ranOn !== undefined) return ranOn(rm.workerJobs(v.ranOn, v.limit), v.ranOn, v.json);
      const page = rm.listJobs({
        limit: v.limit,
        ...(statuses.length ? { status: statuses.length === 1 ? statuses[0]! : statuses } : {}), ...(v.search ? { q: v.search } : {}),
        ...(v.worker ? { workerId: v.worker } : {}), ...(v.cursor ? { cursor: v.cursor } : {}),
      });
      if (v.json) {
        console.log(JSON.stringify({ success: true, ...page }, null, 2));
        return 0;
      }
      const now = Date.now();
      printTable(["ID", "STATUS", "PROGRESS", "ATTEMPT", "WORKER", "SUBMITTED", "DURATION", "URL"],
        page.jobs.map((j) => [j.id, j.status, `${Math.round(j.progress)}%`, String(j.attempt), j.workerId ?? "-", ago(j.submittedAt, now), duration(j.duration), j.url ?? "(scenario)"]));
      if (page.nextCursor) console.log(`\nmore: ${nextPageCommand(v, page.nextCursor)}`);
      return 0;
    } finally {
      rm.close();
    }
  },
});

/** `troupe jobs --ran-on <worker>`: each job with its latest attempt on that worker, and where the job is now. */
function ranOn(rows: WorkerJob[], workerId: string, json: boolean): number {
  if (json) {
    console.log(JSON.stringify({ success: true, workerId, recentJobs: rows }, null, 2));
    return 0;
  }
  const now = Date.now();
  printTable(["ID", "ATTEMPT", "HERE", "ERROR", "NOW", "ASSIGNED", "URL"], rows.flatMap(({ job, attempts }) => {
    const mine = attempts.filter((a) => a.workerId === workerId);
    const last = mine[mine.length - 1];
    if (!last) return [];
    const here = attemptRecordOf(last);
    const tries = mine.length > 1 ? ` (${mine.length} here)` : "";
    return [[job.id, `${here.attempt}${tries}`, attemptText(here), here.error?.code ?? "", laterText(job, here) || "-", ago(here.assignedAt, now), job.url ?? "(scenario)"]];
  }));
  return 0;
}

/** A word as a POSIX shell reads it back. */
const shellWord = (w: string) => (/^[A-Za-z0-9_.,:/=@%+-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`);

/**
 * The command for the next page: the cursor with the same filters and page size. The cursor alone
 * (`troupe jobs --cursor …`) paged on through every job, not the ones asked for (a walkthrough of `--status failed`).
 */
export function nextPageCommand(v: { dataDir: string; db?: string | undefined; status?: string | undefined; search?: string | undefined; worker?: string | undefined; limit: number }, cursor: string): string {
  const args: string[] = [];
  if (v.db !== undefined) args.push("--db", v.db);
  else if (v.dataDir !== ".troupe") args.push("--data-dir", v.dataDir);
  if (v.status !== undefined) args.push("--status", v.status);
  if (v.search !== undefined) args.push("--search", v.search);
  if (v.worker !== undefined) args.push("--worker", v.worker);
  if (v.limit !== 20) args.push("--limit", String(v.limit));
  return ["troupe", "jobs", ...args, "--cursor", cursor].map(shellWord).join(" ");
}

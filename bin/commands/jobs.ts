import { JOB_STATUSES, parseStatusList } from "@troupe/events";
import { bool, defineCommand, int, str, UsageError } from "@troupe/events/node";
import { dbPathFor } from "../../services/projector/src/db-file.ts";
import { openReadModels } from "../../services/projector/src/read-models.ts";
import { ago, duration } from "../../ui/src/lib/format.ts";
import { noReadModels, printTable } from "./workers.ts";

export const command = defineCommand({
  name: "jobs",
  summary: "List jobs (newest first) from the projector's read models; --cursor pages on.",
  options: {
    dataDir: str("data directory", { env: "TROUPE_DATA_DIR", default: ".troupe", metavar: "<dir>" }),
    db: str("read-model database (default <data dir>/readmodels.sqlite)", { env: "TROUPE_PROJECTOR_DB", metavar: "<file>" }),
    status: str(`only jobs in this status, or in any of several comma-separated (${JOB_STATUSES.join(", ")})`, { metavar: "<status>" }),
    search: str("part of an id, url or tag", { metavar: "<text>" }),
    worker: str("only jobs of this worker", { metavar: "<id>", pattern: /^[A-Za-z0-9_-]{1,64}$/, patternHelp: "a worker id" }),
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
    const rm = openReadModels(dbPathFor(v.dataDir, v.db));
    try {
      if (!rm.ready()) {
        console.error(noReadModels("jobs", dbPathFor(v.dataDir, v.db)));
        return 1;
      }
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
      if (page.nextCursor) console.log(`\nmore: troupe jobs --cursor ${page.nextCursor}`);
      return 0;
    } finally {
      rm.close();
    }
  },
});

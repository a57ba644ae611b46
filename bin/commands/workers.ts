import { WORKER_STATUSES, type WorkerStatusView } from "@troupe/events";
import { bool, defineCommand, int, str, terminalSafe } from "@troupe/events/node";
import { dbPathFor } from "../../services/projector/src/db-file.ts";
import { openReadModels } from "../../services/projector/src/read-models.ts";
import { workerDto } from "../../ui/src/lib/workers.ts";
import { RECENT_MINUTES, recentByWorker, recentFrom, recentRate } from "../../ui/src/lib/recent.ts";
import { ago, duration } from "../../ui/src/lib/format.ts";

export const command = defineCommand({
  name: "workers",
  summary: "List workers and their state from the projector's read models (the same rows the dashboard shows).",
  options: {
    dataDir: str("data directory", { env: "TROUPE_DATA_DIR", default: ".troupe", metavar: "<dir>" }),
    db: str("read-model database (default <data dir>/readmodels.sqlite)", { env: "TROUPE_PROJECTOR_DB", metavar: "<file>" }),
    status: str("only workers in this status", { choices: WORKER_STATUSES }),
    search: str("substring of id, name or ip", { metavar: "<text>" }),
    json: bool("print the GET /api/workers JSON shape", { default: false }),
    suspectAfterMs: int("show a worker as suspect when silent for two of its heartbeat intervals, and never sooner than this (0 = no floor)", { env: "TROUPE_UI_SUSPECT_AFTER_MS", default: 0, min: 0, metavar: "<ms>" }),
  },
  async run({ values: v }) {
    const rm = openReadModels(dbPathFor(v.dataDir, v.db), { suspectAfterMs: v.suspectAfterMs });
    try {
      if (!rm.ready()) {
        console.error(noReadModels("workers", dbPathFor(v.dataDir, v.db)));
        return 1;
      }
      const now = Date.now();
      // One snapshot: the workers' counts and their recent minutes as of one moment.
      const { workers, recent } = rm.snapshot(() => ({
        workers: rm.listWorkers({ ...(v.status ? { status: v.status as WorkerStatusView } : {}), ...(v.search ? { q: v.search } : {}) }),
        recent: recentByWorker(rm.workerOutcomes(recentFrom(now))),
      }));
      if (v.json) {
        console.log(JSON.stringify({ success: true, workers: workers.map((w) => workerDto(w, now, v.suspectAfterMs, recent.get(w.id))) }, null, 2));
        return 0;
      }
      // A lost or stopped worker's last readings are no load of now (a lost one showed 100 % CPU from 15 min before).
      const gone = (w: (typeof workers)[number]) => w.status === "lost" || w.status === "offline";
      // The dashboard's main figure first: the last 60 min (ui/src/lib/recent.ts), then every attempt since registration.
      const last = (w: (typeof workers)[number]) => {
        const r = recentRate(recent.get(w.id), now);
        return r.successRate === null ? "-" : `${Math.round(r.successRate)}% (${r.completed}/${r.completed + r.failed})`;
      };
      const rows = workers.map((w) => [w.id, w.name, w.status, gone(w) ? `-/${w.maxJobs}` : `${w.currentJobs}/${w.maxJobs}`, gone(w) ? "-" : `${Math.round(w.cpu)}%`, gone(w) ? "-" : `${Math.round(w.memory)}MiB`, last(w), w.jobsCompleted + w.jobsFailed ? `${Math.round(w.successRate)}%` : "-", duration(w.averageJobDuration), ago(w.lastSeen, now)]);
      printTable(["ID", "NAME", "STATUS", "JOBS", "CPU", "MEM", `SUCCESS ${RECENT_MINUTES} MIN`, "ALL TIME", "AVG JOB", "LAST SEEN"], rows);
      return 0;
    } finally {
      rm.close();
    }
  },
});

/** What `troupe workers` and `troupe jobs` say when the data dir has no read models. */
export function noReadModels(command: string, path: string): string {
  return `troupe ${command}: no read models at ${path} yet — start the projector (troupe projector), or, if the stack runs with another data dir (\`troupe up --data-dir <dir>\`), give --data-dir <dir> or TROUPE_DATA_DIR=<dir>`;
}

export function printTable(head: string[], rowsIn: string[][]): void {
  const rows = rowsIn.map((r) => r.map(terminalSafe));
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ").trimEnd();
  console.log(line(head));
  for (const r of rows) console.log(line(r));
  if (rows.length === 0) console.log("(none)");
}

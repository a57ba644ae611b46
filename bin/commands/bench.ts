import { bool, defineCommand, int, str, UsageError } from "@troupe/events/node";
import { formatAll, loadServiceBench, runAll, SERVICE_BENCHES, updateDocs, writeResults } from "../../bench/all.ts";
import { growthBench } from "../../bench/growth.ts";
import { formatReport, type Bench } from "../../bench/report.ts";

/**
 * Benchmarks by name. The service benches live in bench/<name>.ts and export
 * `bench`; limits, peer and growth are the report's own parts; `all` runs
 * everything (see bench/all.ts).
 */
const BENCHES: Record<string, () => Promise<Bench>> = {
  ...Object.fromEntries(SERVICE_BENCHES.map((n) => [n, () => loadServiceBench(n)])),
  limits: async () => (await import("../../bench/limits.ts")).bench,
  peer: async () => (await import("../../bench/peer-bullmq.ts")).bench,
  growth: async () => growthBench(loadServiceBench),
  // An experiment for issue #7 (workers taking jobs from a JetStream work queue); not part of `all`.
  "work-queue": async () => (await import("../../bench/work-queue.ts")).bench,
};
const NAMES = [...Object.keys(BENCHES), "all"].join(", ");

/**
 * Benchmarks may leave handles behind (a service bench that times out keeps
 * running); once the figures are out, the process must still end.
 */
function exitSoon(code: number): void {
  setTimeout(() => {
    console.error("bench: handles still open 5 s after the run; exiting");
    process.exit(code);
  }, 5_000).unref();
}

export const command = defineCommand({
  name: "bench",
  summary: `run a benchmark and print its figures: ${NAMES}`,
  args: "<name>",
  maxPositionals: 1,
  options: {
    quick: bool("small sizes, only to check the benchmark still works", { env: "TROUPE_BENCH_QUICK", default: false }),
    runs: int("all: how many times to run every benchmark (default 3, quick 1)", { min: 1, max: 50, env: "TROUPE_BENCH_RUNS" }),
    growth: bool("all: include the growth series (1×, 10×, 100×, 1000× a base size)", { default: true }),
    docs: bool("all: regenerate the tables in docs/benchmarks.md (default on, off in quick mode)"),
    out: str("all: directory for the results JSON", { default: "bench/results", metavar: "<dir>" }),
  },
  details: `
\`all\` runs limits, the service benches (${SERVICE_BENCHES.join(", ")}) and the BullMQ peer (right after dispatch, with
its shape) --runs times, then the growth series; prints one table of medians (min–max), writes
<out>/<timestamp>.json and regenerates the tables in docs/benchmarks.md. A service bench that does
not exist yet or throws is reported as missing/failed and the rest goes on.`,
  async run({ values, positionals }) {
    const name = positionals[0];
    if (!name) throw new UsageError(`name a benchmark: ${NAMES}`);
    const log = (l: string) => console.error(l);
    if (name === "all") {
      const result = await runAll({ runs: values.runs ?? (values.quick ? 1 : 3), quick: values.quick, log, growth: values.growth });
      console.log(formatAll(result));
      const file = writeResults(result, values.out);
      console.log(`\nresults: ${file}`);
      if (values.docs ?? !values.quick) {
        updateDocs(result, undefined, file);
        console.log("docs/benchmarks.md: tables regenerated");
      }
      exitSoon(0);
      return 0;
    }
    if (values.runs !== undefined) throw new UsageError("--runs applies to `bench all` only");
    const load = BENCHES[name];
    if (!load) throw new UsageError(`unknown benchmark "${name}"; expected one of ${NAMES}`);
    const bench = await load();
    const report = await bench({ quick: values.quick, log });
    console.log(formatReport(report));
    exitSoon(0);
    return 0;
  },
});

import { bool, defineCommand, UsageError } from "@troupe/events/node";
import { formatReport, type Bench } from "../../bench/report.ts";

/** Benchmarks by name; each lives in bench/<name>.ts and exports `bench`. */
const BENCHES: Record<string, () => Promise<Bench>> = {
  worker: async () => (await import("../../bench/worker.ts")).bench,
  dispatch: async () => (await import("../../bench/dispatch.ts")).bench,
  scale: async () => (await import("../../bench/scale.ts")).bench,
  projector: async () => (await import("../../bench/projector.ts")).bench,
  ui: async () => (await import("../../bench/ui.ts")).bench,
};

export const command = defineCommand({
  name: "bench",
  summary: `run a benchmark and print its figures: ${Object.keys(BENCHES).join(", ")}`,
  args: "<name>",
  maxPositionals: 1,
  options: {
    quick: bool("small sizes, only to check the benchmark still works", { env: "TROUPE_BENCH_QUICK", default: false }),
  },
  async run({ values, positionals }) {
    const name = positionals[0];
    if (!name) throw new UsageError(`name a benchmark: ${Object.keys(BENCHES).join(", ")}`);
    const load = BENCHES[name];
    if (!load) throw new UsageError(`unknown benchmark "${name}"; expected one of ${Object.keys(BENCHES).join(", ")}`);
    const bench = await load();
    const report = await bench({ quick: values.quick, log: (l) => console.error(l) });
    console.log(formatReport(report));
    return 0;
  },
});

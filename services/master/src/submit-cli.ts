import { bool, defineCommand, int, natsOptions, str } from "@troupe/events/node";

export const submitOptions = {
  ...natsOptions,
  url: str("URL to open (instead of a job file)", { metavar: "<url>" }),
  priority: int("1-10, higher runs first", { min: 1, max: 10 }),
  browser: str("browser the job needs, e.g. chromium", { metavar: "<name>" }),
  labels: str("worker labels the job needs, all of them (workerLabels), comma-separated, e.g. region=eu,residential", { metavar: "<list>" }),
  idempotencyKey: str("resubmitting with the same key returns the same job", { metavar: "<key>" }),
  answerTimeout: int("how long to wait for a master's answer, per try (3 tries, the same idempotency key each), and for a master to listen when none does (one restarting)", { default: 10_000, min: 100, max: 600_000, metavar: "<ms>" }),
  wait: bool("follow the job with a progress bar; exit 0 on completion, 1 on failure", { default: false }),
  waitTimeout: int("with --wait: give up waiting after this long (0 = never, the default); exit 3", { min: 0, metavar: "<ms>" }),
} as const;

export const command = defineCommand({
  name: "submit",
  summary: "submit a job (JSON file or --url), --wait to follow it",
  args: "[job.json | -]",
  maxPositionals: 1,
  options: submitOptions,
  details: "The job file is a jobs.submit body (events/schemas); flags override its fields. Prints the job id. Connects as the ui role.",
  async run(parsed) {
    const { submitMain } = await import("./submit.ts");
    return submitMain(parsed.values, parsed.positionals[0]);
  },
});

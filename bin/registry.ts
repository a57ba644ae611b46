import type { CliCommand } from "@troupe/events/node";

/** Every `troupe` subcommand: summary for the list, and its module, loaded only when run. */
export const COMMANDS: Record<string, { summary: string; load: () => Promise<CliCommand> }> = {
  up: { summary: "run the whole stack (nats, master, projector, ui, workers), --demo for live demo data", load: async () => (await import("./commands/up.ts")).command as CliCommand },
  nats: { summary: "generate credentials on first run and start nats-server with nats.conf", load: async () => (await import("./commands/nats.ts")).command as CliCommand },
  "rotate-key": { summary: "replace the secrets key that seals proxy passwords; the old one stays usable by workers", load: async () => (await import("./commands/rotate-key.ts")).command as CliCommand },
  "worker-user": { summary: "give one worker its own NATS user, allowed to act only as that worker (add | remove | list | reload)", load: async () => (await import("./commands/worker-user.ts")).command as CliCommand },
  init: { summary: "create or update the streams, object store and KV bucket (idempotent)", load: async () => (await import("./commands/init.ts")).command as CliCommand },
  master: { summary: "run the master: job queue, assignment, liveness, retries", load: async () => (await import("../services/master/src/cli.ts")).command as CliCommand },
  worker: { summary: "run a worker: registration, heartbeats, Puppeteer scenario jobs", load: async () => (await import("../services/worker/src/cli.ts")).command as CliCommand },
  projector: { summary: "run the projector: fold the event log into SQLite read models", load: async () => (await import("../services/projector/src/cli.ts")).command as CliCommand },
  replay: { summary: "rebuild the read models from the whole log (same as projector --rebuild)", load: async () => (await import("../services/projector/src/cli.ts")).replayCommand as CliCommand },
  ui: { summary: "serve the dashboard and the REST API", load: async () => (await import("./commands/ui.ts")).command as CliCommand },
  submit: { summary: "submit a job (JSON file or --url), --wait to follow it", load: async () => (await import("../services/master/src/submit-cli.ts")).command as CliCommand },
  cancel: { summary: "cancel a queued or running job", load: async () => (await import("./commands/job-actions.ts")).cancelCommand },
  retry: { summary: "redrive a failed or dead job", load: async () => (await import("./commands/job-actions.ts")).retryCommand },
  drain: { summary: "drain a worker: no new jobs, running ones finish", load: async () => (await import("./commands/job-actions.ts")).drainCommand },
  resume: { summary: "resume a drained worker: it takes jobs again", load: async () => (await import("./commands/job-actions.ts")).resumeCommand },
  workers: { summary: "list workers and their state", load: async () => (await import("./commands/workers.ts")).command as CliCommand },
  jobs: { summary: "list jobs and their state", load: async () => (await import("./commands/jobs.ts")).command as CliCommand },
  tail: { summary: "print live events one line each; --since replays from the stream first", load: async () => (await import("./commands/tail.ts")).command as CliCommand },
  bench: { summary: "run benchmarks: worker, dispatch, scale, projector, ui, limits, peer, growth, work-queue, all", load: async () => (await import("./commands/bench.ts")).command as CliCommand },
};

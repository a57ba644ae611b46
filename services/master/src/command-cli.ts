import { decodeReply, subjectsFor, validateCommand, type CommandName } from "@troupe/events";
import { connectAs, defineCommand, int, natsOptions, str, terminalSafe, UsageError, type CliCommand, type OptionValues } from "@troupe/events/node";

/** `troupe cancel`, `troupe retry`, `troupe drain`: the master's commands from a shell, as the dashboard sends them. */

const baseOptions = {
  ...natsOptions,
  answerTimeout: int("how long to wait for the master's answer", { default: 10_000, min: 100, max: 600_000, metavar: "<ms>" }),
} as const;
/** cancel and drain keep a reason in the log; a redrive has none. */
const options = { ...baseOptions, reason: str("why, kept in the log", { metavar: "<text>" }) } as const;

type Values = OptionValues<typeof baseOptions>;

async function send(rpc: Extract<CommandName, "jobs.cancel" | "jobs.retry" | "workers.drain">, body: Record<string, unknown>, v: Values): Promise<number> {
  const checked = validateCommand(rpc, body);
  if (!checked.ok) throw new UsageError(`${checked.error.path || rpc}: ${checked.error.message}`);
  const nc = await connectAs({ url: v.natsUrl, ca: v.natsCa, role: "ui", dataDir: v.dataDir, name: `troupe-${rpc}` });
  try {
    const subject = subjectsFor(v.prefix).rpc(rpc);
    let data: Uint8Array;
    try {
      data = (await nc.request(subject, JSON.stringify(body), { timeout: v.answerTimeout })).data;
    } catch (e) {
      console.error(`troupe: no answer from a master on ${subject}: ${(e as Error).message} (is \`troupe master\` running?)`);
      return 1;
    }
    const r = decodeReply("ack", data);
    if (!r.ok) {
      console.error(`troupe: invalid reply from the master: ${r.error.message}`);
      return 1;
    }
    if (!r.value.ok) {
      const e = r.value.error;
      console.error(terminalSafe(`troupe: refused (${e.code})${e.field ? ` ${e.field}:` : ""} ${e.message}`));
      return e.code === "invalid" ? 2 : 1;
    }
    return 0;
  } finally {
    await nc.close();
  }
}

const one = (positionals: string[], what: string): string => {
  const id = positionals[0];
  if (id === undefined) throw new UsageError(`give the ${what}`);
  return id;
};

export const cancelCommand = defineCommand({
  name: "cancel",
  summary: "cancel a queued or running job (a running one is stopped on its worker)",
  args: "<jobId>",
  maxPositionals: 1,
  options,
  details: "Exit 0 when the master recorded it, 1 when it refused (e.g. the job already ended: conflict) or did not answer, 2 on bad input.",
  run: ({ values: v, positionals }) => send("jobs.cancel", { jobId: one(positionals, "job id"), ...(v.reason ? { reason: v.reason } : {}) }, v),
}) as CliCommand;

export const retryCommand = defineCommand({
  name: "retry",
  summary: "redrive a failed or dead job (a new attempt, queued again)",
  args: "<jobId>",
  maxPositionals: 1,
  options: baseOptions,
  details: "Exit 0 when the master recorded it, 1 when it refused (only failed and dead jobs can be retried) or did not answer, 2 on bad input.",
  run: ({ values: v, positionals }) => send("jobs.retry", { jobId: one(positionals, "job id") }, v),
}) as CliCommand;

export const drainCommand = defineCommand({
  name: "drain",
  summary: "drain a worker: it takes no new jobs and finishes the ones it runs",
  args: "<workerId>",
  maxPositionals: 1,
  options,
  details: "Exit 0 when the master passed it on, 1 when it refused (e.g. an unknown worker) or did not answer, 2 on bad input.",
  run: ({ values: v, positionals }) => send("workers.drain", { workerId: one(positionals, "worker id"), ...(v.reason ? { reason: v.reason } : {}) }, v),
}) as CliCommand;

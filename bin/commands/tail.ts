import { DeliverPolicy, jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { subjectsFor } from "@troupe/events";
import { bool, connectAs, defineCommand, natsOptions, shutdownSignal, stdoutClosed, storeNames, str, UsageError, type NatsRole } from "@troupe/events/node";
import { formatLine, jsonLine, parseSince, streamFor } from "./tail-format.ts";

export const command = defineCommand({
  name: "tail",
  summary: "Print live events one readable line each (time, subject, type, key fields); --since replays from the stream first, then follows live.",
  args: "[subject]",
  maxPositionals: 1,
  options: {
    ...natsOptions,
    json: bool("print raw message bodies, one per line", { default: false }),
    since: str("replay from a stream sequence, an ISO time or a duration ago (30s, 5m, 2h)", { metavar: "<seq|time|dur>" }),
    role: str("NATS user to connect as (default: live; ui with --since, which needs JetStream)", { env: "TROUPE_TAIL_ROLE", choices: ["live", "ui", "master", "projector"] }),
  },
  details: `
subject defaults to <prefix>.evt.> (all events); <prefix>.hb.> shows heartbeats, <prefix>.> both
(live only). Examples:
  troupe tail                                  # every event from now on
  troupe tail 'troupe.evt.job.*.failed'        # failures only
  troupe tail --since 10m 'troupe.evt.job.>'   # the last 10 minutes of job events, then live`,
  async run({ values: v, positionals }) {
    const s = subjectsFor(v.prefix);
    const subject = positionals[0] ?? s.allEvents;
    const bad = subjectFilterError(subject);
    if (bad) throw new UsageError(`invalid subject ${JSON.stringify(subject)}: ${bad}`);
    const since = v.since !== undefined ? parseSince(v.since) : undefined;
    const role = (v.role ?? (since ? "ui" : "live")) as NatsRole;
    // The live user may only subscribe to events and heartbeats: a replay needs a JetStream consumer.
    if (since && role === "live") throw new UsageError("--since replays through a JetStream consumer, which the live user may not make: use --role ui (the default with --since)");
    const stream = since ? streamFor(subject, s, storeNames(v.prefix)) : null;
    if (since && !stream) throw new UsageError(`--since needs a subject inside one stream (${s.prefix}.evt.… or ${s.prefix}.hb.…), got ${subject}`);
    const nc = await connectAs({ url: v.natsUrl, ca: v.natsCa, role, dataDir: v.dataDir, name: "troupe-tail" });
    const print = (subj: string, data: Uint8Array) => {
      console.log(v.json ? jsonLine(data) : formatLine(subj, data, s));
    };
    // Ctrl-C, or the reader of our output gone (`troupe tail | head -3`): stop quietly, exit 0.
    const done = Promise.race([shutdownSignal(), stdoutClosed()]);
    try {
      if (since && stream) {
        await replayThenFollow(nc, stream, subject, since, print, done);
        return 0;
      }
      const refused = await follow(nc, subject === `${s.prefix}.>` ? [s.allEvents, s.allHeartbeats] : [subject], print, done);
      if (!refused) return 0;
      console.error(`troupe tail: ${refused.message} — the ${role} user may not read it (each role's subjects: nats.conf, docs/security.md); events are ${s.allEvents}, heartbeats ${s.allHeartbeats}`);
      return 1;
    } finally {
      await nc.close();
    }
  },
});

/** Follows until Ctrl-C or the connection's end; resolves to the error when the server refuses a subscription (it then delivers nothing, so waiting on would hang). */
async function follow(nc: NatsConnection, subjects: string[], print: (s: string, d: Uint8Array) => void, done: Promise<unknown>): Promise<Error | null> {
  let refuse: (e: Error) => void = () => {};
  const refusal = new Promise<Error>((r) => (refuse = r));
  for (const subj of subjects) nc.subscribe(subj, { callback: (err, m) => (err ? refuse(err) : print(m.subject, m.data)) });
  await nc.flush();
  console.error(`troupe tail: following ${subjects.join(", ")} (Ctrl-C to stop)`);
  return Promise.race([done.then(() => null), nc.closed().then(() => null), refusal]);
}

async function replayThenFollow(nc: NatsConnection, stream: string, subject: string, since: ReturnType<typeof parseSince>, print: (s: string, d: Uint8Array) => void, done: Promise<unknown>) {
  const js = jetstream(nc);
  const consumer = await js.consumers.get(stream, {
    filter_subjects: subject,
    ...("seq" in since ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: since.seq } : { deliver_policy: DeliverPolicy.StartTime, opt_start_time: since.time }),
  });
  const messages = await consumer.consume();
  console.error(`troupe tail: replaying ${stream} ${subject} from ${"seq" in since ? `sequence ${since.seq}` : since.time}, then following (Ctrl-C to stop)`);
  if ("seq" in since) {
    // Past the end, nothing is replayed: said, not left to look like an empty history (a walkthrough).
    const last = (await (await js.jetstreamManager()).streams.info(stream)).state.last_seq;
    if (since.seq > last + 1) console.error(`troupe tail: ${stream} ends at sequence ${last}: nothing to replay before ${since.seq}, waiting for it`);
  }
  void done.then(() => messages.stop());
  for await (const m of messages) print(m.subject, m.data);
}

/** Why a NATS subject filter is malformed (nats-server would take it without a word and deliver nothing), or undefined. */
export function subjectFilterError(subject: string): string | undefined {
  const tokens = subject.split(".");
  if (tokens.some((t) => t === "")) return "a token is empty (two dots in a row, or a dot at an end)";
  for (const [i, t] of tokens.entries()) {
    if (!/^[A-Za-z0-9_*>$-]+$/.test(t)) return `token ${JSON.stringify(t)} may hold only letters, digits, _ - $ and the wildcards`;
    if ((t.includes("*") || t.includes(">")) && t.length > 1) return `a wildcard is a whole token (${JSON.stringify(t)})`;
    if (t === ">" && i !== tokens.length - 1) return "> matches the rest of the subject, so it must be the last token";
  }
  return undefined;
}

import { DeliverPolicy, jetstream, type ConsumerMessages, type JetStreamClient, type JsMsg } from "@nats-io/jetstream";
import type { NatsConnection, Status } from "@nats-io/nats-core";
import { newId } from "@troupe/events";
import { CONSUMER_CREATE_MAX_TIMEOUT_MS, ConsumerCreateTimeout, FOLLOW_PULL, retryWithBackoff, untilNatsAnswers } from "@troupe/events/node";
import { setTimeout as delay } from "node:timers/promises";
import type { Logger } from "pino";

/**
 * Follows a stream with an ordered consumer: first what is stored, then live.
 * `onCaughtUp` fires once, when the stored part has been handed over.
 *
 * After a reconnect the consumer is made again from the next stream sequence
 * at once: the library's ordered consumer would find out only after missing
 * its heartbeats (~30 s), and a nats-server restart loses its pull requests,
 * so for that long the master would fold nothing, take every worker for silent
 * and fold none of its own decisions (seen in tests/e2e/nats-crash.test.ts).
 * The same without a reconnect: in a cluster the consumer lives on one member
 * (the stream's leader when it was made); when that member dies the master's
 * connection to another one stays up and only the missed idle heartbeats tell
 * (tests/integration/cluster.test.ts). So the heartbeat is 1 s, not 15 s
 * (FOLLOW_PULL), and missing them makes the consumer again the same way.
 */
export interface FollowOptions {
  stream: string;
  /** `all` for the event log; `last-per-subject` for the heartbeat tail. */
  deliver: "all" | "last-per-subject";
  /** With `all`: start at this sequence instead of the first (after a snapshot). */
  startSeq?: number;
  onMessage: (m: JsMsg) => void;
  onCaughtUp: () => void;
  /** False while the consumer is being made again after a reconnect (nothing arrives meanwhile), true once it is back. */
  onSeeing?: (seeing: boolean) => void;
  /**
   * Aborted when the owner stops: the first reads' waits end, and follow() returns a Following that follows nothing
   * (a master stopped while its start waited for JetStream went on waiting, and then followed, for ever).
   */
  signal?: AbortSignal;
  log: Logger;
}

export interface Following {
  stop(): Promise<void>;
}

/**
 * Each ordered consumer is made by three creates raced at CONSUMER_CREATE_TIMEOUT_MS (longer on a slow link or after
 * creates that timed out: ConsumerCreateTimeout), the first that answers kept (a create placed on a dead member never answers):
 * p90 110 ms, worst 3.8 s, against up to ~17 s for one create at a time, on a three-member test cluster with one
 * member dead (2026-11-29).
 */
const CREATES_RACED = 3;

export async function follow(nc: NatsConnection, js: JetStreamClient, o: FollowOptions): Promise<Following> {
  // The first reads are waited out like the re-opens below: a JetStream that answers with timeouts for a while (a loaded
  // server, one just restarted) made a master that was starting exit with a bare "timeout" (a chaos soak, 2026-11-30).
  // A connection closed for good is not waited out: the start fails and the master exits 1 for its supervisor.
  const ownerStopped = () => o.signal?.aborted ?? false;
  const untilAnswered = <T>(what: string, fn: () => Promise<T>) =>
    // A try under way is let go at the signal: reads leave nothing to undo, and open() deletes a consumer it made after it.
    untilNatsAnswers(nc, fn, { stopped: ownerStopped, ...(o.signal ? { signal: o.signal } : {}), abandon: () => undefined, onRetry: (e, wait) => o.log.warn({ stream: o.stream, err: e.message, retryInMs: wait }, `could not ${what} yet`) });
  // Also the client of the library's own consumer resets; made for each open, with the create timeout of the moment.
  const createTimeout = new ConsumerCreateTimeout({ escalate: true });
  const createJs = () => jetstream(nc, { ...js.getOptions(), timeout: createTimeout.ms });
  const jsm = await untilAnswered("reach JetStream", () => js.jetstreamManager());
  if (!jsm) return FOLLOWING_NOTHING;
  const info = await untilAnswered("read the stream's state", async () => {
    const asked = Date.now();
    const i = await jsm.streams.info(o.stream);
    // How fast JetStream answers over this link: the creates below are given three times as long.
    createTimeout.answeredIn(Date.now() - asked);
    return i;
  });
  if (!info) return FOLLOWING_NOTHING;
  let caughtUp = false;
  const caught = () => {
    if (caughtUp) return;
    caughtUp = true;
    o.onCaughtUp();
  };
  const from = o.deliver === "all" && o.startSeq !== undefined && o.startSeq > 1 ? o.startSeq : undefined;
  // Nothing stored (from the start sequence on): caught up at once.
  if (info.state.messages === 0 || (from !== undefined && info.state.last_seq < from)) caught();
  /** Stream sequence of the last message handed over: a consumer made again goes on after it, and nothing is handed over twice. */
  let lastSeq = 0;
  let generation = 0;
  let stopped = false;
  let messages: ConsumerMessages | undefined;
  /** The consumer `messages` reads (deleted on the server when it is replaced or stopped). */
  let current: { delete(): Promise<unknown> } | undefined;

  /**
   * Deletes a consumer whose create failed here (a timeout: it may be made on the server all the same). The delete
   * follows the create on the same connection; one that still finds nothing is tried once more a create's longest
   * time later, without holding the process.
   */
  const dropLeftover = (name: string) => {
    const drop = () => jsm.consumers.delete(o.stream, name);
    void drop().catch((e: Error) => (/not found/i.test(e.message) ? delay(CONSUMER_CREATE_MAX_TIMEOUT_MS, undefined, { ref: false }).then(drop) : undefined)).catch(() => undefined);
  };
  const policy = o.deliver === "all" ? DeliverPolicy.All : DeliverPolicy.LastPerSubject;
  const open = async (startSeq: number | undefined) => {
    const gen = ++generation;
    const opts = startSeq !== undefined ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: startSeq } : { deliver_policy: policy };
    // A copy each: consumers.get() writes its name prefix into the options it is given.
    const client = createJs();
    const asked = Date.now();
    // Named by us (`<prefix>_1`, as nats.js names an ordered consumer): a create that timed out here may still be made
    // on the server, and is deleted by name; it stayed there until its 5-minute inactivity threshold.
    const prefixes = Array.from({ length: CREATES_RACED }, () => newId("tf"));
    const tries = prefixes.map((name_prefix) => client.consumers.get(o.stream, { ...opts, name_prefix }));
    const won = Promise.any(tries);
    // The others are not needed (those on a dead member go with its inactivity threshold); the winner is known first.
    void Promise.allSettled(tries).then(async (done) => {
      const winner = await won.catch(() => undefined);
      done.forEach((r, i) => {
        if (r.status === "fulfilled") {
          if (r.value !== winner) void r.value.delete().catch(() => undefined);
        } else dropLeftover(`${prefixes[i]}_1`);
      });
    });
    const consumer = await won.catch((e: AggregateError) => {
      createTimeout.failed(e.errors[0]);
      throw e.errors[0] as Error;
    });
    createTimeout.answeredIn(Date.now() - asked);
    // Bigger pulls than the default 100: the heartbeat tail of a large pool arrives at thousands per second.
    // A callback, not an async iterator: the messages of one socket read are folded in one turn
    // (no promise per message), and what the folds trigger leaves in one write.
    const m = await consumer.consume({
      max_messages: 1000,
      ...FOLLOW_PULL,
      callback: (m) => {
        if (gen !== generation || m.seq <= lastSeq) return;
        lastSeq = m.seq;
        try {
          o.onMessage(m);
        } catch (e) {
          // A bug in folding one message must not stop the master from following the log.
          o.log.error({ err: e, seq: m.seq, subject: m.subject }, "failed to process a message");
        }
        if (m.info.pending === 0) caught();
      },
    });
    // Stopped while this was being made (stop() found nothing to close): closed and deleted here, else it fed a
    // stopped master and stayed on the server (a review).
    if (stopped || ownerStopped() || gen !== generation) {
      await m.close().catch(() => undefined);
      void consumer.delete().catch(() => undefined);
      throw new Error("stopped while following the stream");
    }
    messages = m;
    current = consumer;
    void (async () => {
      for await (const n of m.status()) {
        if (gen !== generation) break;
        if (n.type === "heartbeats_missed") void reopen(`${n.count} idle heartbeats missed`);
      }
    })().catch(() => undefined);
  };
  let reopening = false;
  /** Makes the consumer again from the next sequence (a lost connection, or a consumer gone with its server). */
  async function reopen(why: string): Promise<void> {
    if (stopped || reopening) return;
    reopening = true;
    o.onSeeing?.(false);
    generation++;
    const old = messages;
    const oldConsumer = current;
    messages = undefined;
    current = undefined;
    // Not awaited: closing may ask a server that still answers with timeouts. Deleted on the server too: else it stayed
    // there, piling up pending messages, until its inactivity threshold (5 min) — up to 10 consumers where 2 were in
    // use, on a starved machine that remade them 29 times an hour (a leak soak, 2026-11-30).
    void old?.close().catch(() => undefined).then(() => oldConsumer?.delete()).catch(() => undefined);
    // JetStream answers with timeouts for a while after a server restart: keep trying.
    await retryWithBackoff(async () => {
      // Nothing handed over yet: start as the first time did.
      await open(lastSeq > 0 ? lastSeq + 1 : from);
      o.log.info({ stream: o.stream, from: lastSeq + 1, why }, "following the stream again");
    }, {
      maxWaitMs: 1000,
      stopped: () => stopped || ownerStopped(),
      onRetry: (e, wait) => o.log.warn({ stream: o.stream, err: e.message, retryInMs: wait }, "could not follow the stream again yet"),
    });
    reopening = false;
    if (!stopped) o.onSeeing?.(true);
  }
  const opened = await untilAnswered("follow the stream", async () => {
    await open(from);
    return true;
  });
  let statuses: (AsyncIterable<Status> & { stop?: () => void }) | undefined;
  const following: Following = {
    async stop() {
      stopped = true;
      // A consumer a reopen is making now is let go by open() itself.
      generation++;
      statuses?.stop?.();
      await messages?.close();
      // Not awaited: with NATS gone it would hold the stop for a request's timeout (the server drops it in 5 min).
      void current?.delete().catch(() => undefined);
    },
  };
  if (!opened) return FOLLOWING_NOTHING;
  // Stopped while the consumer was being made: the owner no longer holds a Following to stop.
  if (ownerStopped()) {
    await following.stop();
    return FOLLOWING_NOTHING;
  }
  const st = (statuses = nc.status() as AsyncIterable<Status> & { stop?: () => void });
  void (async () => {
    for await (const s of st) if (s.type === "reconnect") void reopen(`reconnected to ${s.server}`);
  })();
  return following;
}

/** What follow() returns when its owner stopped before it followed anything. */
const FOLLOWING_NOTHING: Following = { stop: async () => {} };

import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import { nanos, type NatsConnection } from "@nats-io/nats-core";
import type { ProjectorStatus, Subjects } from "@troupe/events";
import { FOLLOW_PULL, retryWithBackoff, startOutage, type Logger } from "@troupe/events/node";
import { Batcher, inDeliveryOrder, rawOf } from "./batcher.ts";
import { fileIdentity, removeStaleGenerations } from "./db-file.ts";
import { isExpectedSkip } from "./fold.ts";
import type { ProjectorMetrics } from "./metrics.ts";
import { openWriterDb, ReadModelWriter, type BatchResult } from "./writer.ts";

/**
 * The live fold: one durable pull consumer per stream, batches applied in one
 * transaction each, acknowledged only after commit. The SQLite checkpoint is the
 * authority on what is applied: on start (and after a rebuild swapped the file)
 * each durable is recreated to start right after the checkpoint, so nothing
 * waits for an ack timeout to be redelivered.
 */

/** How often the live fold checks that the read-model path still points at its file (one stat). */
const SWAP_CHECK_MS = 1000;

export interface LiveOptions {
  nc: NatsConnection;
  /** The read-model path (a symlink to the current generation). */
  path: string;
  streams: readonly string[];
  /** Durable consumer name on each stream. */
  durable: string;
  subjects: Subjects;
  batchMax: number;
  seriesRetentionMs: number;
  metrics: ProjectorMetrics;
  log: Logger;
  /** Called after every committed batch (benchmarks, tests). */
  onCommit?: (stream: string, r: BatchResult, lagsMs: number[]) => void;
  /** Ends `start()`'s wait for a JetStream that does not answer (the service is stopping). */
  signal?: AbortSignal;
}

export class LiveProjector {
  private writer: ReadModelWriter | null = null;
  private identity: string | null = null;
  private consumers: { messages: ConsumerMessages; batcher: Batcher }[] = [];
  private generation = 0;
  private failed: ((e: Error) => void) | null = null;
  /** Rejects when the fold cannot go on (SQLite error, lost consumer). */
  readonly failure: Promise<never>;
  private restarting: Promise<void> | null = null;
  /** Why the fold is following the streams again (a reopen or a resume), while it does. */
  private restartingWhy: string | null = null;
  private jsm: JetStreamManager | null = null;
  private swapWatch: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly o: LiveOptions) {
    this.failure = new Promise<never>((_, reject) => (this.failed = reject));
    this.failure.catch(() => {});
  }

  /**
   * Opens the file and follows every stream from its checkpoint. A JetStream that does not answer (a server restarting,
   * a loaded machine) is waited out — however long at the service's start (`giveUpAfterMs` for a reopen), until
   * `signal` or `stop()` ends the wait: a projector whose server stalled for a second just after it connected exited 1
   * with a bare "timeout" (a start-up soak, 2026-11-30).
   */
  async start(o: { giveUpAfterMs?: number } = {}): Promise<void> {
    // Which file the path points at is read *before* opening it: a swap landing during the open then shows as a
    // change and is followed. Read after, it named the file of that later swap while this one wrote the earlier
    // file, nobody read it, and the read models stopped moving (until 2026-11-30; test/swap-race.test.ts).
    const identity = fileIdentity(this.o.path);
    this.writer = new ReadModelWriter(openWriterDb(this.o.path, "live"), {
      subjects: this.o.subjects, seriesRetentionMs: this.o.seriesRetentionMs, clockMs: Date.now,
    });
    this.identity = identity;
    this.writer.pruneSeries(true);
    await retryWithBackoff(() => this.followAll(), {
      maxWaitMs: 4000,
      retryIf: startOutage(this.o.nc),
      stopped: () => this.stopped,
      ...(this.o.signal ? { signal: this.o.signal } : {}),
      ...(o.giveUpAfterMs !== undefined ? { giveUpAfterMs: o.giveUpAfterMs } : {}),
      onRetry: (e, wait) => this.o.log.warn({ err: e.message, retryInMs: wait }, "could not follow the streams yet"),
    });
    // Also a swap that no message follows: the new file may end before what this one folded (its rebuild fixed its
    // targets before the last events came), and until 2026-11-30 it stayed so until the next message, if any came.
    this.swapWatch ??= setInterval(() => this.checkSwap(), SWAP_CHECK_MS).unref();
  }

  /**
   * What the fold does instead of following the streams, while a reopen after a swap or a resume after a lost delivery
   * runs (up to a minute with JetStream not answering); null while it follows them. The service's /healthz said ok
   * meanwhile.
   */
  get notFollowing(): string | null {
    return this.restarting ? this.restartingWhy : null;
  }

  /** Reopens when the path points at another file than the one being written. */
  private checkSwap(): void {
    if (this.restarting || !this.writer) return;
    let now: string | null;
    try {
      now = fileIdentity(this.o.path);
    } catch (e) {
      this.failed?.(new Error(`cannot tell which file ${this.o.path} points at: ${(e as Error).message}`, { cause: e }));
      return;
    }
    if (now !== this.identity) void this.reopen();
  }

  /** Follows every stream from its checkpoint; on a failure the consumptions made are stopped (the next try deletes and remakes the durables). */
  private async followAll(): Promise<void> {
    const gen = ++this.generation;
    try {
      this.jsm ??= await jetstreamManager(this.o.nc);
      for (const stream of this.o.streams) await this.follow(stream, gen);
    } catch (e) {
      await this.stopConsumers();
      throw e;
    }
  }

  private async follow(stream: string, gen: number): Promise<void> {
    const jsm = this.jsm as JetStreamManager;
    const from = (this.writer as ReadModelWriter).checkpoint(stream);
    this.o.metrics.checkpoint(stream, from);
    const head = (await jsm.streams.info(stream)).state.last_seq;
    if (head < from) {
      // Every new message would look like a redelivery and be ignored.
      throw new Error(`${stream} ends at sequence ${head}, below the read models' checkpoint ${from}: the stream was recreated; rebuild the read models (troupe replay)`);
    }
    try {
      await jsm.consumers.delete(stream, this.o.durable);
    } catch (e) {
      if (!/consumer not found/i.test((e as Error).message)) throw new Error(`cannot reset consumer ${this.o.durable} on ${stream}: ${(e as Error).message}`, { cause: e });
    }
    await jsm.consumers.add(stream, {
      durable_name: this.o.durable,
      ack_policy: AckPolicy.All,
      ...(from > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from + 1 } : { deliver_policy: DeliverPolicy.All }),
      ack_wait: nanos(30_000),
      max_ack_pending: this.o.batchMax * 20,
      description: "troupe projector: starts after the SQLite checkpoint",
    });
    const consumer = await jetstream(this.o.nc).consumers.get(stream, this.o.durable);
    // The durable is new (deleted and made again above): its deliveries are numbered from 1.
    const order = { next: 1 };
    const batcher = new Batcher(this.o.batchMax, (msgs) => this.applyInOrder(stream, msgs, gen, order));
    // FOLLOW_PULL: two missed 1 s heartbeats make the library pull again, instead of ~30 s of a frozen dashboard.
    const messages = await consumer.consume({ max_messages: this.o.batchMax * 2, ...FOLLOW_PULL, callback: (m) => batcher.push(m) });
    this.consumers.push({ messages, batcher });
    this.o.log.info({ stream, durable: this.o.durable, from: from + 1 }, "following stream");
  }

  /**
   * Applies the messages that continue the consumer's delivery sequence. After a jump (a cluster
   * member died with a delivery in flight, and the consumer's new leader went on after it) what is
   * before it is applied and acknowledged, and the consumers are made again from the checkpoints.
   * Seen in tests/integration/cluster.test.ts: a job's job.completed never reached the live read model.
   */
  private applyInOrder(stream: string, msgs: JsMsg[], gen: number, order: { next: number }): void {
    if (gen !== this.generation) return;
    const expected = order.next;
    const r = inDeliveryOrder(msgs, expected);
    order.next = r.next;
    if (r.count > 0) this.apply(stream, r.count === msgs.length ? msgs : msgs.slice(0, r.count), gen);
    if (r.count < msgs.length && gen === this.generation) {
      this.o.metrics.deliveryGaps++;
      void this.resume(`${stream}: delivery ${(msgs[r.count] as JsMsg).info.deliverySequence} came where ${r.next} was expected`);
    }
  }

  /** Follows every stream again from the checkpoints, trying for up to a minute while the server cannot make the consumers. */
  private resume(why: string): Promise<void> {
    this.restarting ??= (async () => {
      this.restartingWhy = "following the streams again after a lost delivery";
      this.o.log.warn({ why }, "a delivery was lost; following the streams again from the read models' checkpoints");
      await this.stopConsumers();
      await retryWithBackoff(() => this.followAll(), {
        maxWaitMs: 4000,
        giveUpAfterMs: 60_000,
        // A stop ends the wait (it waited out the minute first: a review).
        stopped: () => this.stopped,
        ...(this.o.signal ? { signal: this.o.signal } : {}),
        onRetry: (e, wait) => this.o.log.warn({ err: e.message, retryInMs: wait }, "could not follow the streams again yet"),
      });
    })().catch((e: unknown) => this.failed?.(e as Error)).finally(() => (this.restarting = null));
    return this.restarting;
  }

  private apply(stream: string, msgs: JsMsg[], gen: number): void {
    if (gen !== this.generation || !this.writer) return;
    if (fileIdentity(this.o.path) !== this.identity) {
      // A rebuild swapped in a new file: these messages belong to the old one; start over from the new checkpoints.
      void this.reopen();
      return;
    }
    let r: BatchResult;
    const m = this.o.metrics;
    const before = this.writer.checkpoint(stream);
    try {
      r = this.writer.applyBatch(stream, msgs.map(rawOf), (res) => this.status(stream, res, msgs));
    } catch (e) {
      this.o.log.error({ err: e, stream }, "fold failed; stopping");
      this.generation++; // ignore whatever is still delivered
      this.failed?.(e as Error);
      return;
    }
    const done = Date.now();
    const lags: number[] = [];
    for (const msg of msgs) {
      if (msg.seq > before) {
        const lag = done - Math.floor(msg.info.timestampNanos / 1e6);
        lags.push(lag);
        m.observeLag(lag);
      }
    }
    m.applied += r.applied;
    m.duplicates += r.duplicates;
    m.checkpoint(stream, r.lastSeq);
    if (r.skipped.length) {
      const bySeq = new Map(msgs.map((x) => [x.seq, x]));
      for (const s of r.skipped) {
        m.skip(s.reason);
        (isExpectedSkip(s.reason) ? this.o.log.info : this.o.log.warn).call(this.o.log, { stream, seq: s.seq, subject: s.subject, reason: s.reason }, `skipped event: ${s.detail}`);
        bySeq.get(s.seq)?.term(s.reason);
      }
    }
    // AckPolicy.All: acknowledging the last message acknowledges the whole batch.
    (msgs[msgs.length - 1] as JsMsg).ack();
    this.o.onCommit?.(stream, r, lags);
    this.writer.pruneSeries();
  }

  private status(stream: string, r: BatchResult, msgs: JsMsg[]): ProjectorStatus {
    const now = Date.now();
    let lag = 0;
    for (const msg of msgs) lag = Math.max(lag, now - Math.floor(msg.info.timestampNanos / 1e6));
    const m = this.o.metrics;
    return {
      mode: "live", updatedAt: new Date(now).toISOString(), lagMs: lag, lagP99Ms: m.recentLag(99),
      applied: m.applied + r.applied, skipped: m.skipped + r.skipped.length,
      checkpoints: { ...(this.writer as ReadModelWriter).checkpoints(), [stream]: r.lastSeq },
    };
  }

  /** Closes the file and follows the one the path points at now. */
  reopen(): Promise<void> {
    this.restarting ??= (async () => {
      this.restartingWhy = "reopening the read models a rebuild replaced";
      this.o.log.info({ path: this.o.path }, "read-model file was replaced (rebuild); reopening");
      await this.stopConsumers();
      this.writer?.close();
      this.writer = null;
      // Bounded as resume() is: a projector that cannot follow for a minute exits 1 for its supervisor (its /healthz
      // said ok meanwhile).
      await this.start({ giveUpAfterMs: 60_000 });
      // The file left behind, and any a killed rebuild left, go now (removeStaleGenerations): the replaced file at once
      // when its maker is gone or is this process, without waiting for the swapping rebuild's 5 s grace (readers that
      // still have it open keep reading it; on Linux an unlinked file lives on while open). A failure to delete is
      // logged, not a reason to stop folding.
      try {
        for (const f of removeStaleGenerations(this.o.path, 60_000)) this.o.log.info({ file: f }, "removed a read-model generation a rebuild left");
      } catch (e) {
        this.o.log.warn({ err: (e as Error).message, path: this.o.path }, "could not remove the read-model generations rebuilds left");
      }
    })().catch((e: unknown) => this.failed?.(e as Error)).finally(() => (this.restarting = null));
    return this.restarting;
  }

  private async stopConsumers(): Promise<void> {
    this.generation++;
    const cs = this.consumers;
    this.consumers = [];
    for (const c of cs) {
      c.batcher.stop();
      await c.messages.close();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true; // ends a start's wait for JetStream
    await this.restarting; // a reopen under way starts the watch again
    if (this.swapWatch) clearInterval(this.swapWatch);
    this.swapWatch = null;
    await this.stopConsumers();
    this.writer?.close();
    this.writer = null;
  }
}

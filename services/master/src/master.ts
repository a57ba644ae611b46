import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { headers as natsHeaders, type NatsConnection, type Status } from "@nats-io/nats-core";
import { Objm, type ObjectStore } from "@nats-io/obj";
import { readLatestSnapshot, writeSnapshotObject } from "./snapshot-store.ts";
import {
  createEvent, decodeEvent, decodeReply, isAssignable, newAttemptToken, newId, sha256Hex, subjectsFor,
  type EventData, type EventType, type JobView, type Subjects, type TroupeEvent,
} from "@troupe/events";
import { EventAppender, INSTANCE_HEADER, isNatsOutage, isStorageFull, mayHaveBeenStored, STORAGE_FULL_HINT, storeNames, untilNatsAnswers, type Logger } from "@troupe/events/node";
import { follow, type Following } from "./follow.ts";
import { LeaderLease } from "./leader.ts";
import { newCounters, renderMetrics, type Counters } from "./metrics.ts";
import { BrowserQueues, JobQueue, type QueueEntry } from "./queue.ts";
import { afterRefusal, decide, forgetUnregistered, type Decision, type RecoveryConfig } from "./recovery.ts";
import { ASSIGNED_AGE_HEADER, earliestNow, eventTimeMs, JOB_LEASE_HEADER, leftOut, LogLimit, monoNow, OffsetCeiling, ServerClock, stampTime, streamHead } from "@troupe/events";
import { canRun, pickWorker, type Candidate } from "./scheduler.ts";
import { decodeSnapshot, encodeSnapshotSliced, resumeFrom, snapshotDue } from "./snapshot.ts";
import { applyEvent, applyHeartbeat, assignmentInstance, emptyState, finishedGuardSeq, type MasterState, type WorkerView } from "./state.ts";

/** The longest a delayed job's timer is armed for at once. */
const MAX_DELAY_TIMER_MS = 3_600_000;

/**
 * The master at run time: folds the log, holds (or waits for) the leader
 * lease, and as leader assigns jobs and appends recovery decisions. Every
 * decision is appended to the log first and takes effect when it is folded
 * back, so a restarted or standby master reaches the same state.
 */

export interface MasterConfig extends RecoveryConfig {
  id: string;
  prefix: string;
  /** Leader lease in the KV bucket. */
  leaderLeaseMs: number;
  assignTimeoutMs: number;
  /** How often liveness, leases, delays and expiry are checked. */
  tickMs: number;
  /** Assignment requests in flight at once. */
  maxInflight: number;
  /** Seals submitted proxy passwords (TROUPE_SECRETS_KEY); without it a job with a proxy password is refused. */
  secretsKey?: Buffer;
  /** The leader writes a state snapshot every this many events; 0 or absent = no snapshots written or read. */
  snapshotEvery?: number;
  /** How long an append waits for the log's ack (default 5 s). */
  appendTimeoutMs?: number;
  /**
   * Assign only to workers that take attempt tokens (capabilities.attemptTokens): once every worker is
   * upgraded, no attempt is left whose events any worker credential could forge (docs/security.md).
   */
  requireAttemptTokens?: boolean;
}

interface Pending {
  /** Worker whose slot the assignment reserves. */
  workerId?: string;
  /** The decision is in the log at this sequence; cleared once folded. */
  untilSeq?: number;
  /** Called when it is cleared, or at the latest after `waitUntilMs` (checked each tick). */
  waiters?: (() => void)[];
  waitUntilMs?: number;
}

const isWaiting = (j: JobView) => j.status === "queued" || j.status === "requeued";

interface Unconfirmed {
  workerId: string;
  attempt: number;
  epoch: number;
  /** The attempt's token, when its worker takes one: only this process knows it (the log has its hash). */
  token?: string;
  reading?: boolean;
}

/** How often the master asks the log's streams whether they have a leader. */
const STREAM_CHECK_MS = 1000;
const LOG_DOWN_FIRST_WAIT_MS = 100;
const LOG_DOWN_MAX_WAIT_MS = 2000;

/** How late a tick may run before the master takes it for a pause of its own (timers run a little late under load). */
export const stallToleranceMs = (tickMs: number) => Math.max(250, tickMs);

/** How long silence-based decisions wait for the fold to reach what the streams held (else: the next tick). */
const CATCH_UP_MS = 2000;

/** How often a worker is told again to stop an attempt it still lists; how many such reminders are kept. */
const STALE_CANCEL_EVERY_MS = 10_000;
const STALE_CANCELS_KEPT = 10_000;
/** Appends awaiting their read-back (for the clock's upper bound); past this, the oldest are forgotten. */
const SENT_AT_KEPT = 10_000;

export class Master {
  readonly state: MasterState = emptyState();
  readonly counters: Counters = newCounters();
  /** Lines anyone who may publish can cause, logged at most 10 a minute each (counted in full in counters). */
  readonly logLimits = { invalidEvents: new LogLimit(), invalidHeartbeats: new LogLimit(), droppedRequests: new LogLimit() };
  readonly subjects: Subjects;
  private js: JetStreamClient;
  /** Appends and requests without nats.js's per-request timer and error objects (the hot path). */
  private appender: EventAppender;
  private queue = new BrowserQueues();
  /** Waiting jobs whose notBefore lies ahead, earliest first. */
  private delayed = new JobQueue((a, b) => a.order < b.order);
  private pendingJobs = new Map<string, Pending>();
  private pendingWorkers = new Map<string, number>();
  private reserved = new Map<string, number>();
  private lastPicked = new Map<string, number>();
  private refused = new Map<string, Set<string>>();
  /** Tokenless workers skipped under requireAttemptTokens (each logged once). */
  readonly tokenlessSkipped = new Set<string>();
  /** Workers that did not answer: skipped until then (ms). */
  private unreachable = new Map<string, number>();
  private inflight = 0;
  private stopping = false;
  private stopped: Promise<void> | undefined;
  /** Aborted by stop(): ends the start's waits (for JetStream, between tries at once, and for the fold to catch up). */
  private readonly stopSignal = new AbortController();
  private dispatchScheduled = false;
  /** Assignments whose append got no ack (timed out, cut off): they may be in the log. Read back before the job goes anywhere else (`confirm`). */
  private unconfirmed = new Map<string, Unconfirmed>();
  /** Set while the log refuses appends: dispatch waits until `untilMs` (logLooksDown). */
  private logDown?: { untilMs: number; waitMs: number };
  private logDownTimer?: NodeJS.Timeout;
  private delayTimer?: NodeJS.Timeout;
  private tickTimer?: NodeJS.Timeout;
  /** Checks that the log's streams have a leader (watchStreams). */
  private streamsTimer?: NodeJS.Timeout;
  private checkingStreams = false;
  private leaderless = new Set<string>();
  private eventsCaughtUp = false;
  private heartbeatsCaughtUp = false;
  private followers: Following[] = [];
  private jsm?: JetStreamManager;
  private healthJsm?: JetStreamManager;
  /** Specs being read back from the log (jobs in state.needSpec). */
  private fetchingSpec = new Set<string>();
  private lease?: LeaderLease;
  private leaderListeners: ((leader: boolean, epoch: number) => void)[] = [];
  private foldListeners: ((e: TroupeEvent, seq: number) => void)[] = [];
  /** Age of the last heartbeat when it was processed: the master's processing lag. */
  heartbeatLagMs = 0;
  heartbeatsProcessed = 0;
  /** Server time of the last message folded from each stream, and whether more were waiting. */
  private eventsAt = { timeMs: 0, behind: false };
  private heartbeatsAt = { timeMs: 0, behind: false };
  /** Stream sequences of the last message each follower delivered (folded or skipped as invalid). */
  private eventsSeq = 0;
  private heartbeatsSeq = 0;
  /** Silence-based decisions waiting for the fold to reach what the streams held when they were made. */
  private confirming?: Promise<void>;
  /** Stale attempts a worker was told to stop (`jobId:attempt`), until when not to tell it again. */
  private readonly staleCancels = new Map<string, number>();
  /** Attempts known to run nowhere (`jobId:attempt`: a stale one whose end was read, or one its worker refused), oldest first. */
  private readonly endedStale = new Set<string>();
  /** Jobs each worker's latest heartbeat lists; workers listing each job. */
  private readonly listing = new Map<string, Set<string>>();
  private readonly listedBy = new Map<string, Set<string>>();
  /** The NATS server's clock as each stream's deliveries tell it (each stream's leader stamps its messages): leases and
   *  silences are judged on it, not on this process's. */
  private readonly eventsClock = new ServerClock();
  private readonly heartbeatsClock = new ServerClock();
  /** The stamp of the leader lease this master won, read back: only to date its events before any delivery came. */
  private readonly leaseClock = new ServerClock();
  /** The upper bound of the server's clock, from this master's own events read back (sent at a known time). */
  private readonly ceiling = new OffsetCeiling();
  /** When each of our appends still to be read back was sent (monoNow), by event id. */
  private readonly sentAt = new Map<string, number>();
  private readonly clock = { now: () => earliestNow([this.eventsClock, this.heartbeatsClock]), toServer: (monoMs: number) => monoMs - monoNow() + earliestNow([this.eventsClock, this.heartbeatsClock]) };
  /** Since when this master has been leading and connected: silence before it is no evidence (`decide`). */
  private leaderSinceMs = 0;
  private connectedSinceMs = 0;
  /** When the last tick ran, and when the master last woke from a stall (its process paused: long GC, CPU starvation, SIGSTOP, a suspended VM). */
  private lastTickMs = 0;
  private awakeSinceMs = 0;
  private lateTick = false;
  /** Followers being made again after a reconnect: no decisions about silence until they are back. */
  private blindFollowers = new Set<string>();
  private statuses?: AsyncIterable<Status> & { stop?: () => void };
  private snapshots?: Promise<ObjectStore>;
  /** A snapshot being written, and the applied sequence of the last attempt (the next one is due snapshotEvery events later). */
  private snapshotting?: Promise<void>;
  private snapshotAttemptSeq = 0;

  constructor(readonly nc: NatsConnection, readonly cfg: MasterConfig, readonly log: Logger) {
    this.js = jetstream(nc);
    this.subjects = subjectsFor(cfg.prefix);
    this.appender = new EventAppender(nc, { subjects: this.subjects, ...(cfg.appendTimeoutMs ? { timeoutMs: cfg.appendTimeoutMs } : {}) });
  }

  get epoch(): number {
    return this.lease?.currentEpoch() ?? 0;
  }

  get isLeader(): boolean {
    return this.epoch > 0;
  }

  /** Assignments being recorded or asked (each ends once its worker's answer, or its refusal's decision, is settled). */
  get assignmentsInFlight(): number {
    return this.inflight;
  }

  /** True once the stored log and heartbeat tail are folded. */
  get ready(): boolean {
    return this.eventsCaughtUp && this.heartbeatsCaughtUp;
  }

  onLeaderChange(f: (leader: boolean, epoch: number) => void) {
    this.leaderListeners.push(f);
  }

  /** Called after each event is folded (tests and the submit path use it). */
  onFold(f: (e: TroupeEvent, seq: number) => void) {
    this.foldListeners.push(f);
  }

  async start(): Promise<void> {
    const names = storeNames(this.cfg.prefix);
    let caughtUp!: () => void;
    const caught = new Promise<void>((resolve) => (caughtUp = resolve));
    const check = () => {
      if (!this.ready) return;
      // Jobs redriven from their compact form (while rebuilding) get their spec back now.
      for (const id of this.state.needSpec) void this.readSpec(id);
      caughtUp();
    };
    // A lost connection (a nats-server restart, a network cut) hid the workers' heartbeats and progress from this master.
    const statuses = (this.statuses = this.nc.status() as AsyncIterable<Status> & { stop?: () => void });
    void (async () => {
      for await (const s of statuses) if (s.type === "disconnect" || s.type === "reconnect") this.connectedSinceMs = monoNow();
    })();
    const startSeq = this.cfg.snapshotEvery ? await this.loadSnapshot() : undefined;
    // Stopped while the snapshot's read waited for NATS: nothing more to start.
    if (this.stopping) return;
    // stop() during the start ends the followers' waits for JetStream and the wait for the fold to catch up (both went
    // on for ever in a stopped master).
    const signal = this.stopSignal.signal;
    // Kept only while not stopping; else stopped here (stop() may have gone through the followers already).
    const keep = async (f: Following) => {
      if (this.stopping) await f.stop();
      else this.followers.push(f);
      return !this.stopping;
    };
    if (!(await keep(await follow(this.nc, this.js, { stream: names.events, deliver: "all", ...(startSeq !== undefined ? { startSeq } : {}), onMessage: (m) => this.onEventMessage(m), onCaughtUp: () => { this.eventsCaughtUp = true; check(); }, onSeeing: (on) => this.seeing(names.events, on), signal, log: this.log })))) return;
    if (!(await keep(await follow(this.nc, this.js, { stream: names.heartbeats, deliver: "last-per-subject", onMessage: (m) => this.onHeartbeatMessage(m), onCaughtUp: () => { this.heartbeatsCaughtUp = true; check(); }, onSeeing: (on) => this.seeing(names.heartbeats, on), signal, log: this.log })))) return;
    await Promise.race([caught, new Promise<void>((r) => signal.addEventListener("abort", () => r(), { once: true }))]);
    if (this.stopping) return;
    this.log.info({
      appliedSeq: this.state.appliedSeq, replayedEvents: this.counters.startReplayedEvents, fromSnapshot: this.counters.startSnapshotSeq || undefined,
      jobs: this.state.jobs.size, finishedJobs: this.state.finished.size, workers: this.state.workers.size,
    }, "state rebuilt from the log");
    // Binds without asking the server; the lease's own loop waits out an outage.
    const kv = await new Kvm(this.nc).open(names.masterKv);
    this.lease = new LeaderLease(kv, this.cfg.id, this.cfg.leaderLeaseMs, this.log, (s) => {
      if (s.leader) this.leaderSinceMs = monoNow();
      for (const f of this.leaderListeners) f(s.leader, s.epoch);
      if (s.leader) this.scheduleDispatch();
    });
    this.lease.onServerStamp = (ms) => this.leaseClock.observe(ms);
    this.lease.serverNow = () => (this.eventsClock.observed || this.heartbeatsClock.observed ? this.clock.now() : undefined);
    this.lease.start(() => this.ready);
    this.tickTimer = setInterval(() => this.tick(), this.cfg.tickMs);
    this.streamsTimer = setInterval(() => void this.watchStreams(), STREAM_CHECK_MS);
  }

  /** A start-up call waited out while NATS does not answer (see `untilNatsAnswers`); undefined once `stop()` ended the wait. */
  private untilAnswered<T>(what: string, fn: () => Promise<T>): Promise<T | undefined> {
    // Reads only: one let go at stop() leaves nothing to undo.
    return untilNatsAnswers(this.nc, fn, { signal: this.stopSignal.signal, abandon: () => undefined, onRetry: (e, wait) => this.log.warn({ err: e.message, retryInMs: wait }, `could not ${what} yet`) });
  }

  /** A follower lost sight of its stream (reconnecting) or got it back: the window for silence starts again when it is back. */
  private seeing(stream: string, on: boolean) {
    if (on) this.blindFollowers.delete(stream);
    else this.blindFollowers.add(stream);
    this.connectedSinceMs = monoNow();
  }

  /** Stops deciding, hands the lease over, stops following. */
  stop(): Promise<void> {
    // Once: a start's abort and its caller's cleanup may both ask.
    return (this.stopped ??= this.stopOnce());
  }

  private async stopOnce(): Promise<void> {
    this.stopping = true;
    this.stopSignal.abort();
    clearInterval(this.tickTimer);
    clearInterval(this.streamsTimer);
    clearTimeout(this.delayTimer);
    clearTimeout(this.logDownTimer);
    this.statuses?.stop?.();
    await this.lease?.stop(true);
    await this.snapshotting;
    this.releaseSeqWaiters(Number.POSITIVE_INFINITY);
    while (this.inflight > 0) {
      this.releaseWaiters(Number.POSITIVE_INFINITY);
      await new Promise((r) => setTimeout(r, 10));
    }
    for (const r of await Promise.allSettled(this.followers.map((f) => f.stop()))) {
      if (r.status === "rejected") this.log.warn({ err: (r.reason as Error).message }, "could not stop following a stream");
    }
    this.appender.close();
  }

  metricsText(): string {
    return renderMetrics(this.state, this.counters, { leader: this.isLeader, epoch: this.epoch, nowMs: this.decisionTime(), seeingSinceMs: this.seeingSince(), liveness: this.cfg, lagMs: this.heartbeatLagMs, heartbeats: this.heartbeatsProcessed, delayed: this.delayed.size });
  }

  // ---- folding -------------------------------------------------------------

  private onEventMessage(m: JsMsg) {
    try {
      this.foldEventMessage(m);
    } finally {
      if (this.seqWaiters.length > 0) this.releaseSeqWaiters(Date.now());
    }
  }

  private foldEventMessage(m: JsMsg) {
    if (!this.eventsCaughtUp) this.counters.startReplayedEvents++;
    this.eventsSeq = m.seq;
    // Live deliveries only: a replayed message's stamp says nothing of the server's clock now.
    if (this.eventsCaughtUp && m.info.pending === 0) this.eventsClock.observe(Math.floor(m.info.timestampNanos / 1e6));
    this.eventsAt = { timeMs: Math.floor(m.info.timestampNanos / 1e6), behind: m.info.pending > 0 };
    const r = decodeEvent(m.subject, m.data, { subjects: this.subjects });
    if (!r.ok) {
      this.counters.invalidMessages++;
      const n = this.logLimits.invalidEvents.take();
      if (n !== undefined) this.log.warn({ seq: m.seq, subject: m.subject, error: r.error, ...leftOut(n) }, "skipping an invalid event");
      return;
    }
    const sent = this.sentAt.get(r.value.id);
    if (sent !== undefined) {
      this.sentAt.delete(r.value.id);
      this.ceiling.observe(Math.floor(m.info.timestampNanos / 1e6), sent);
    }
    this.fold(r.value, m.seq, m.subject, Math.floor(m.info.timestampNanos / 1e6));
  }

  private onHeartbeatMessage(m: JsMsg) {
    this.heartbeatsSeq = m.seq;
    const r = decodeEvent(m.subject, m.data, { subjects: this.subjects });
    if (!r.ok || r.value.type !== "worker.heartbeat") {
      this.counters.invalidMessages++;
      const n = this.logLimits.invalidHeartbeats.take();
      if (n !== undefined) this.log.warn({ seq: m.seq, subject: m.subject, error: r.ok ? "not a heartbeat" : r.error, ...leftOut(n) }, "skipping an invalid heartbeat");
      return;
    }
    const timeMs = Math.floor(m.info.timestampNanos / 1e6);
    this.heartbeatsAt = { timeMs, behind: m.info.pending > 0 };
    if (this.heartbeatsCaughtUp && m.info.pending === 0) this.heartbeatsClock.observe(timeMs);
    this.heartbeatsProcessed++;
    this.heartbeatLagMs = Math.max(0, this.clock.now() - timeMs);
    const w = this.state.workers.get(r.value.data.workerId);
    const wasFull = w ? w.held.size >= w.maxSlots : true;
    applyHeartbeat(this.state, r.value, timeMs);
    this.unreachable.delete(r.value.data.workerId);
    if (this.heartbeatsCaughtUp && m.info.pending === 0) this.cancelStaleAttempts(r.value.data.workerId, r.value.data.jobIds);
    // A worker that just joined (or came back) may take waiting jobs.
    if (wasFull && this.queue.size > 0) this.scheduleDispatch();
  }

  /** Folds one event; public so tests can drive the fold without a server. */
  fold(e: TroupeEvent, seq: number, subject: string, timeMs: number) {
    const res = applyEvent(this.state, e, { seq, subject, timeMs });
    // Our decision is folded (applied or fenced out): it no longer holds the job or a slot.
    if (e.type.startsWith("job.")) {
      const jobId = (e.data as { jobId: string }).jobId;
      const p = this.pendingJobs.get(jobId);
      if (p?.untilSeq !== undefined && seq >= p.untilSeq) this.clearPending(jobId);
      // Settled now: strays whose end was read while the job was open run nowhere (a review).
      if (res.ok && this.state.finished.get(jobId)?.strays) this.dropEndedStrays(jobId);
    }
    // A worker's end of an attempt: it is done with the job, whatever its last heartbeat listed (a retry may go back
    // to it at once); a fenced-out attempt's end also means no reminder to stop it.
    if (e.type === "job.completed" || e.type === "job.failed") {
      if (res.ok) this.unlist(e.data.jobId, e.data.workerId);
      else this.staleEnded(e.data.jobId, e.data.workerId, e.data.attempt);
    }
    if (!res.ok) {
      this.log.info({ seq, type: e.type, reason: res.reason, detail: res.detail }, "rejected a job event (fencing)");
    } else if (res.job) {
      const job = res.job;
      const u = this.unconfirmed.get(job.id);
      if (u && !(isWaiting(job) && job.attempt === u.attempt)) {
        // The log moved the job on: by something else, the assignment is moot. By the unacknowledged assignment
        // itself, the read-back still decides: it asks the stream's leader, the one answer a failover cannot take back.
        const ours = e.type === "job.assigned" && e.source === this.cfg.id && e.data.workerId === u.workerId && e.data.attempt === u.attempt;
        if (!ours) this.unconfirmed.delete(job.id);
      }
      if (e.type === "job.assigned") {
        const since = Math.max(Date.parse(res.previous?.updatedAt ?? job.submittedAt), res.previous?.notBefore ? Date.parse(res.previous.notBefore) : 0);
        this.counters.assignmentLatency.observe(Math.max(0, timeMs - since) / 1000);
      }
      if (this.state.needSpec.has(job.id)) {
        if (this.ready) void this.readSpec(job.id);
      } else if (isWaiting(job)) this.enqueue(job);
      else {
        // Cancelled, dead or taken: a job due weeks ahead must not sit in the delay queue until then.
        this.delayed.discard(job.id);
        this.queue.discard(job.id, job.spec);
        if (job.status !== "assigned" && job.status !== "running") this.refused.delete(job.id);
      }
      if (!isWaiting(job) || e.type === "job.submitted" || e.type === "job.requeued") this.scheduleDispatch();
      // A cancel recorded while our assignment was on its way (the canceller saw the job queued) names no worker,
      // and nobody told the worker: it ran the cancelled job to the end. The request follows the assignment on the
      // same connection, so the worker has the job by the time it arrives.
      const prev = res.previous;
      if (e.type === "job.cancelled" && !e.data.workerId && this.ready && this.isLeader && prev?.workerId && (prev.status === "assigned" || prev.status === "running")) {
        void this.cancelOnWorker(prev.workerId, prev.id, prev.attempt, e.data.reason ?? "cancelled");
      }
    } else if (e.type === "worker.lost" || e.type === "worker.registered" || e.type === "worker.deregistered") {
      if (e.type === "worker.lost") this.pendingWorkers.delete(e.data.workerId);
      if (e.type === "worker.registered") this.unreachable.delete(e.data.workerId);
      this.scheduleDispatch();
    }
    for (const f of this.foldListeners) f(e, seq);
  }

  /**
   * Reads a redriven job's spec back from its job.submitted (the master keeps
   * no spec of a settled job). Until then the job is neither queued nor
   * decided about; a failed read is tried again on the next tick.
   */
  private async readSpec(jobId: string) {
    if (this.fetchingSpec.has(jobId) || this.stopping) return;
    this.fetchingSpec.add(jobId);
    try {
      this.jsm ??= await this.js.jetstreamManager();
      const m = await this.jsm.streams.getMessage(storeNames(this.cfg.prefix).events, { last_by_subj: this.subjects.job(jobId, "submitted") });
      if (!m) throw new Error("no job.submitted in the log");
      const r = decodeEvent(m.subject, m.data, { subjects: this.subjects });
      if (!r.ok || r.value.type !== "job.submitted") throw new Error(`invalid job.submitted: ${r.ok ? r.value.type : r.error.message}`);
      const job = this.state.jobs.get(jobId);
      if (!job || !this.state.needSpec.has(jobId)) return; // settled again meanwhile
      const spec = r.value.data.spec;
      // A new view, not the held one changed in place: views are values (a snapshot or a fold result may hold the old one).
      const restored: JobView = { ...job, spec, priority: spec.priority, url: spec.url, tags: spec.tags ?? [], idempotencyKey: r.value.data.idempotencyKey, submittedAt: r.value.time };
      this.state.jobs.set(jobId, restored);
      this.state.needSpec.delete(jobId);
      if (isWaiting(restored)) this.enqueue(restored);
      this.scheduleDispatch();
    } catch (e) {
      this.log.warn({ jobId, err: (e as Error).message }, "could not read a redriven job's spec back from the log; trying again on the next tick");
    } finally {
      this.fetchingSpec.delete(jobId);
    }
  }

  private enqueue(job: JobView) {
    const order = this.state.submitSeq.get(job.id) ?? 0;
    const nb = job.notBefore ? Date.parse(job.notBefore) : 0;
    if (nb > this.clock.now()) {
      this.delayed.push({ jobId: job.id, priority: job.priority, order: nb });
      this.armDelayTimer();
    } else this.queue.push({ jobId: job.id, priority: job.priority, order }, job.spec);
  }

  private armDelayTimer() {
    const next = this.delayed.peek();
    if (!next || this.stopping) return;
    clearTimeout(this.delayTimer);
    // At most an hour at a time: Node fires a timer longer than 2^31 ms (~24.8 days) after 1 ms, which
    // for a runAt weeks ahead made the master re-arm every millisecond. Early wake-ups find nothing due and re-arm.
    this.delayTimer = setTimeout(() => this.scheduleDispatch(), Math.min(MAX_DELAY_TIMER_MS, Math.max(0, next.order - this.clock.now()) + 1));
  }

  private clearPending(jobId: string) {
    const p = this.pendingJobs.get(jobId);
    if (!p) return;
    this.pendingJobs.delete(jobId);
    for (const w of p.waiters ?? []) w();
    if (p.workerId) {
      const n = (this.reserved.get(p.workerId) ?? 1) - 1;
      if (n <= 0) this.reserved.delete(p.workerId);
      else this.reserved.set(p.workerId, n);
    }
  }

  // ---- assignment ----------------------------------------------------------

  scheduleDispatch() {
    if (this.dispatchScheduled || this.stopping) return;
    this.dispatchScheduled = true;
    setImmediate(() => {
      this.dispatchScheduled = false;
      this.dispatch();
    });
  }

  /** Whether the worker may be given jobs at all under this master's settings (requireAttemptTokens). */
  private mayAssign(w: WorkerView): boolean {
    if (!this.cfg.requireAttemptTokens) return true;
    if (w.tokens) {
      // Logged again should it ever register without them (a downgrade, a forged registration).
      if (this.tokenlessSkipped.size > 0) this.tokenlessSkipped.delete(w.id);
      return true;
    }
    if (!this.tokenlessSkipped.has(w.id)) {
      this.tokenlessSkipped.add(w.id);
      this.log.warn({ workerId: w.id }, "worker takes no attempt tokens (an older release) and gets no jobs: --require-attempt-tokens is set; upgrade it");
    }
    return false;
  }

  private candidates(): Candidate[] {
    const out: Candidate[] = [];
    const now = Date.now();
    for (const w of this.state.workers.values()) {
      if (w.lifecycle !== "online" || !this.mayAssign(w)) continue;
      if ((this.unreachable.get(w.id) ?? 0) > now) continue;
      out.push({ worker: w, load: w.held.size + (this.reserved.get(w.id) ?? 0), lastPickedMs: this.lastPicked.get(w.id) ?? 0 });
    }
    return out;
  }

  private dispatch() {
    const epoch = this.epoch;
    if (!epoch || !this.ready) return;
    const now = Date.now();
    if (this.logDown && now < this.logDown.untilMs) return; // logLooksDown's timer comes back
    const serverNow = this.clock.now();
    for (let d = this.delayed.peek(); d && d.order <= serverNow; d = this.delayed.peek()) {
      this.delayed.pop();
      const job = this.state.jobs.get(d.jobId);
      if (job && isWaiting(job)) this.queue.push({ jobId: job.id, priority: job.priority, order: this.state.submitSeq.get(job.id) ?? 0 }, job.spec);
    }
    this.armDelayTimer();
    const cands = this.candidates();
    let free = cands.reduce((n, c) => n + Math.max(0, c.worker.maxSlots - c.load), 0);
    const aside: { entry: QueueEntry; spec: JobView["spec"] }[] = [];
    // Placements (browser, labels) no free worker offers this round: their queues wait, the others go on.
    const blocked = new Set<string>();
    let misses = 0;
    while (free > 0 && this.inflight < this.cfg.maxInflight && misses < 1000) {
      const next = this.queue.pop(blocked);
      if (!next) break;
      const { entry } = next;
      const job = this.state.jobs.get(entry.jobId);
      // An unacknowledged assignment's job comes back once read back (confirm).
      if (!job || !isWaiting(job) || this.pendingJobs.has(job.id) || this.unconfirmed.has(job.id)) continue;
      if (!isAssignable(job, serverNow)) {
        this.enqueue(job);
        continue;
      }
      if (job.spec.expiresAt && Date.parse(job.spec.expiresAt) <= serverNow) {
        aside.push({ entry, spec: job.spec }); // recovery marks it dead
        continue;
      }
      const refusedBy = this.refused.get(job.id);
      // Not a worker that still runs an older attempt of it (its heartbeat lists the job): it would refuse.
      const busyWith = this.listedBy.get(job.id);
      const exclude = busyWith?.size ? new Set([...(refusedBy ?? []), ...busyWith]) : refusedBy;
      // Presence on the server's clock, which stamped the heartbeats.
      const cand = pickWorker(job, cands, serverNow, this.cfg, exclude);
      if (!cand) {
        aside.push({ entry, spec: job.spec });
        // Without job-specific exclusions (refusals, a worker still on an older attempt) no job of this placement fits anywhere now.
        if (!exclude?.size) blocked.add(next.key);
        misses++;
        continue;
      }
      cand.load++;
      cand.lastPickedMs = now + this.lastPicked.size; // strictly increasing within a round
      this.lastPicked.set(cand.worker.id, cand.lastPickedMs);
      free--;
      this.pendingJobs.set(job.id, { workerId: cand.worker.id });
      this.reserved.set(cand.worker.id, (this.reserved.get(cand.worker.id) ?? 0) + 1);
      void this.assign(job, cand.worker.id, epoch);
    }
    for (const a of aside) this.queue.push(a.entry, a.spec);
  }

  /**
   * Records the assignment first (guarded), then asks the worker. Appending
   * before asking means the worker's job.started can never reach the log
   * ahead of its job.assigned (it would be fenced out), and a master that lost
   * the guard race never contacts a worker. A refusal or no answer appends
   * job.requeued (worker-refused), which does not count as a spent attempt.
   */
  private async assign(job: JobView, workerId: string, epoch: number) {
    this.inflight++;
    let recorded = false;
    // A secret for this attempt, given only to its worker; the log keeps its hash (docs/security.md, "Attempt tokens").
    const token = this.state.workers.get(workerId)?.tokens ? newAttemptToken() : undefined;
    try {
      try {
        const ack = await this.append("job.assigned", { jobId: job.id, workerId, attempt: job.attempt, epoch, ...(token !== undefined ? { tokenHash: sha256Hex(token) } : {}) }, this.subjects.job(job.id, "assigned"));
        recorded = true;
        this.counters.assignments++;
        const p = this.pendingJobs.get(job.id);
        if (p && ack.seq > this.state.appliedSeq) p.untilSeq = ack.seq;
        else this.clearPending(job.id);
      } catch (e) {
        // Maybe stored: the job waits until the log says (confirm), instead of being assigned again or left for its lease to lapse.
        if (mayHaveBeenStored(e)) {
          this.unconfirmed.set(job.id, { workerId, attempt: job.attempt, epoch, ...(token !== undefined ? { token } : {}) });
          void this.confirm(job.id);
        }
        // While the log is down, one line per outage (logLooksDown), not one per attempt.
        if (!isNatsOutage(e)) this.log.warn({ jobId: job.id, workerId, err: (e as Error).message }, "could not record the assignment (another master may have); leaving the job to the log");
        return;
      }
      // Ask only once our assignment is folded and stands: a job cancelled meanwhile, or an
      // assignment fenced out (older epoch), must not reach a worker.
      await this.untilFolded(job.id);
      // The wait is bounded, but a fold that lags by more than the bound (a follower that missed its idle heartbeats
      // and is made again, on a loaded machine) has not read the assignment yet: that is not "did not stand". Deciding
      // then left the job assigned to a worker never asked until its lease lapsed, spending an attempt (a chaos soak).
      while (!this.stopping && this.pendingJobs.get(job.id)?.untilSeq !== undefined) await this.untilFolded(job.id);
      const now = this.state.jobs.get(job.id);
      if (now?.status !== "assigned" || now.workerId !== workerId || now.attempt !== job.attempt) {
        this.log.info({ jobId: job.id, workerId, status: now?.status }, "assignment did not stand; not asking the worker");
        return;
      }
      await this.askAndSettle(job, workerId, epoch, token);
    } finally {
      this.inflight--;
      if (!recorded) {
        this.clearPending(job.id);
        const cur = this.state.jobs.get(job.id);
        if (cur && isWaiting(cur)) this.enqueue(cur);
      }
      this.scheduleDispatch();
    }
  }

  /** Asks the worker; a refusal or no answer appends job.requeued (worker-refused), which does not count as a spent attempt. */
  private async askAndSettle(job: JobView, workerId: string, epoch: number, token: string | undefined) {
    const refusal = await this.askWorker(job, workerId, epoch, token);
    if (refusal === undefined) return;
    // Straight to the next worker; once every worker refused, back off (refusals are not spent attempts, but each is a log entry).
    const exhausted = this.noteRefusal(job, workerId);
    // Leading again, or still, under another epoch (the lease lapsed a moment while a renewal was slow, or was won
    // back): the refusal is a fact, recorded under the epoch this master leads with now while the job still waits on
    // that worker; otherwise it stayed assigned to a worker that refused it until its lease lapsed, an attempt spent
    // (a review). Deposed, it decides nothing (apply): the new leader judges the attempt by its lease.
    const now = this.epoch;
    const cur = this.state.jobs.get(job.id);
    const stillOnIt = cur?.status === "assigned" && cur.workerId === workerId && cur.attempt === job.attempt;
    await this.apply(afterRefusal(this.state, job, workerId, refusal, exhausted, this.clock.now(), this.cfg), now > 0 && now !== epoch && stillOnIt ? now : epoch);
  }

  /**
   * Reads back an assignment whose append got no ack: the last message on the job's `assigned`
   * subject says whether it was stored. Stored: the worker is asked now (`confirmed`), not after the
   * lease lapses. Not stored: the job may be assigned again. The log unreadable: tried again on the
   * next tick. The fold showing the job moved on by anything else makes it moot.
   */
  private async confirm(jobId: string) {
    const u = this.unconfirmed.get(jobId);
    if (!u || u.reading || this.stopping) return;
    u.reading = true;
    try {
      this.jsm ??= await this.js.jetstreamManager();
      let stored = false;
      try {
        const m = await this.jsm.streams.getMessage(storeNames(this.cfg.prefix).events, { last_by_subj: this.subjects.job(jobId, "assigned") });
        const d = m ? decodeEvent(m.subject, m.data, { subjects: this.subjects }) : undefined;
        stored = d?.ok === true && d.value.type === "job.assigned" && d.value.source === this.cfg.id && d.value.data.attempt === u.attempt && d.value.data.workerId === u.workerId;
      } catch (e) {
        if (!/no message found/i.test((e as Error).message)) throw e;
      }
      if (this.unconfirmed.get(jobId) !== u) return; // the fold settled it meanwhile
      this.unconfirmed.delete(jobId);
      if (stored) void this.confirmed(jobId, u);
      else {
        const job = this.state.jobs.get(jobId);
        if (job && isWaiting(job)) this.enqueue(job);
        this.scheduleDispatch();
      }
    } catch (e) {
      this.log.debug({ jobId, err: (e as Error).message }, "could not read back an unacknowledged assignment; trying again on the next tick");
    } finally {
      u.reading = false;
    }
  }

  /** An unacknowledged assignment is in the log after all: ask its worker now (the fold may not show it yet). */
  private async confirmed(jobId: string, u: Unconfirmed) {
    const job = this.state.jobs.get(jobId);
    // Only while the attempt is still this one, and not assigned elsewhere.
    if (!job || job.attempt !== u.attempt || !(isWaiting(job) || (job.status === "assigned" && job.workerId === u.workerId))) return;
    this.counters.lateAssignments++;
    this.log.info({ jobId, workerId: u.workerId, attempt: u.attempt }, "an assignment whose append got no ack is in the log; asking the worker now");
    this.inflight++;
    // Until the fold shows the assignment, the job still looks queued here: dispatch must not pick it meanwhile.
    const mine: Pending = {};
    this.pendingJobs.set(jobId, mine);
    try {
      await this.askAndSettle(job, u.workerId, u.epoch, u.token);
    } finally {
      this.inflight--;
      // A decision appended meanwhile (a refusal's requeue) holds the job until it is folded.
      if (this.pendingJobs.get(jobId) === mine) this.clearPending(jobId);
      this.scheduleDispatch();
    }
  }

  /** undefined when the worker accepted; otherwise why not. */
  private async askWorker(job: JobView, workerId: string, epoch: number, token: string | undefined): Promise<string | undefined> {
    const body = JSON.stringify({ jobId: job.id, attempt: job.attempt, epoch, spec: job.spec, ...(token !== undefined ? { token } : {}) });
    // Headers, which workers that predate them ignore (the body's schema would refuse a new field): the process the
    // assignment is for (another process with this worker id, a paused twin, leaves the request alone), and this
    // master's job lease (the worker reports progress at its cadence, whatever its own TROUPE_JOB_LEASE_MS says).
    const h = natsHeaders();
    h.set(JOB_LEASE_HEADER, String(this.cfg.leaseMs));
    const instanceId = assignmentInstance(this.state, job.id, workerId, job.attempt);
    if (instanceId !== undefined) h.set(INSTANCE_HEADER, instanceId);
    // How old the stored assignment is: the worker's count toward this lease starts there, not when it hears of it.
    const assignedAt = this.state.activityMs.get(job.id);
    if (assignedAt !== undefined) h.set(ASSIGNED_AGE_HEADER, String(Math.max(0, Math.round(this.clock.now() - assignedAt))));
    let replyBytes: Uint8Array;
    try {
      replyBytes = (await this.request(this.subjects.workerCommand(workerId, "assign"), body, h)).data;
    } catch (e) {
      this.counters.assignTimeouts++;
      this.unreachable.set(workerId, Date.now() + this.cfg.heartbeatIntervalMs);
      this.log.warn({ jobId: job.id, workerId, err: (e as Error).message }, "worker did not answer the assignment; trying another");
      // It may have accepted and the answer got lost: tell it to drop the attempt. Not once deposed meanwhile: the
      // attempt stands in the log, and the new leader judges it by its lease.
      if (this.epoch === epoch) void this.cancelOnWorker(workerId, job.id, job.attempt, "assignment timed out");
      return "no answer";
    }
    const reply = decodeReply("worker.assign", replyBytes);
    if (!reply.ok) {
      this.counters.invalidMessages++;
      this.log.warn({ jobId: job.id, workerId, error: reply.error }, "invalid answer to an assignment; treating it as a refusal");
      return "invalid answer";
    }
    if (!reply.value.accepted) {
      this.counters.refusals++;
      // Refused: the attempt runs nowhere. A job settled meanwhile (cancelled while the worker was asked) would keep it
      // as a stray and remind the worker to stop it, for nothing (a loaded CI run).
      this.attemptEnded(job.id, job.attempt);
      // The worker's own words (e.g. it has no TROUPE_SECRETS_KEY for the job's proxy password): the operator's only clue.
      this.log.info({ jobId: job.id, workerId, reason: reply.value.reason, ...(reply.value.message ? { message: reply.value.message } : {}), ...(reply.value.field ? { field: reply.value.field } : {}) }, "worker refused the job; trying another");
      return reply.value.reason;
    }
    return undefined;
  }

  /**
   * Resolves once the job has no decision of ours on its way to the fold.
   * Bounded: a stalled fold must not hold an assignment (and shutdown) forever;
   * the caller re-checks the state. The bound is checked by the tick (and
   * released at stop), not by a timer per job.
   */
  private untilFolded(jobId: string): Promise<void> {
    const p = this.pendingJobs.get(jobId);
    if (!p) return Promise.resolve();
    p.waitUntilMs ??= Date.now() + this.cfg.assignTimeoutMs;
    return new Promise((resolve) => (p.waiters ??= []).push(resolve));
  }

  /**
   * Resolves once the job has no decision of this master's on its way and the fold has read the log as far as it
   * reached (both bounded by assignTimeoutMs): what the state then says of the job includes every decision taken
   * so far (the attempt check, rpc.ts). False when a bound ran out first (the state may not show a decision yet);
   * rejects when the stream cannot be read.
   */
  async settled(jobId: string): Promise<boolean> {
    await this.untilFolded(jobId);
    if (this.pendingJobs.has(jobId)) return false;
    return await this.caughtUp();
  }

  /** Commands waiting for the fold to read the events log as far as it reached when they asked (caughtUp). */
  private seqWaiters: { seq: number; untilMs: number; resolve: () => void }[] = [];

  /**
   * Resolves once the fold has read the events log as far as it reached when asked, or after assignTimeoutMs (the
   * caller looks at the state again either way; true when it got there). A command about an event just appended found the job unknown or
   * in its old state while the fold was behind: a cancel right after its submit answered "no job" (a loaded CI run).
   */
  async caughtUp(): Promise<boolean> {
    this.jsm ??= await this.js.jetstreamManager();
    const head = (await this.jsm.streams.info(this.eventStream)).state.last_seq;
    const at = () => Math.max(this.eventsSeq, this.state.appliedSeq);
    if (at() >= head) return true;
    await new Promise<void>((resolve) => this.seqWaiters.push({ seq: head, untilMs: Date.now() + this.cfg.assignTimeoutMs, resolve }));
    return at() >= head;
  }

  private releaseSeqWaiters(nowMs: number) {
    const at = Math.max(this.eventsSeq, this.state.appliedSeq);
    this.seqWaiters = this.seqWaiters.filter((w) => {
      if (w.seq > at && w.untilMs > nowMs) return true;
      w.resolve();
      return false;
    });
  }

  /** Lets go of fold waiters past their bound (all of them with Infinity). */
  private releaseWaiters(nowMs: number) {
    for (const p of this.pendingJobs.values()) {
      if (!p.waiters || (p.waitUntilMs ?? 0) > nowMs) continue;
      const ws = p.waiters;
      p.waiters = undefined;
      p.waitUntilMs = undefined;
      for (const w of ws) w();
    }
  }

  /** Remembers a refusal; true when every online worker has now refused the job (the set starts over). */
  private noteRefusal(job: JobView, workerId: string): boolean {
    const jobId = job.id;
    let s = this.refused.get(jobId);
    if (!s) this.refused.set(jobId, (s = new Set()));
    s.add(workerId);
    // The workers that could have been asked: registered, online, the job's browser and labels.
    let online = 0;
    for (const w of this.state.workers.values()) if (w.lifecycle === "online" && this.mayAssign(w) && canRun(w, job)) online++;
    if (s.size < online) return false;
    this.refused.delete(jobId);
    return true;
  }

  /**
   * Appends a master decision guarded by expected-last-subject-sequence on its
   * subject, as known from the fold: if anyone appended there since, it fails.
   * A fixed `eventId` (the Nats-Msg-Id) also makes JetStream drop a repeat
   * inside its duplicate window, which holds on R3 streams where 2.9.10 does
   * not enforce the guard.
   */
  async append<T extends EventType>(type: T, data: EventData<T>, subject: string, eventId?: string) {
    const jobId = type.startsWith("job.") ? (data as { jobId: string }).jobId : undefined;
    // A job is submitted once: its submission's subject must be empty, whatever the fold has read. Guarded by what the
    // fold knew, a keyed resubmission that came while the first was being folded passed the guard and recorded the job
    // twice (when another message had taken the key's message id, so JetStream's de-duplication did not catch it).
    const expect = type === "job.submitted" ? 0 : this.state.subjectSeq.get(subject) ?? (jobId !== undefined ? finishedGuardSeq(this.state, jobId, type) : undefined) ?? 0;
    // Dated on the server's clock when this machine's is off: the log's times and the stamps the silences are judged by agree.
    const wall = Date.now();
    const mono = monoNow();
    // The lease's stamp only until a delivery came: it is one sample, as loose as that read was, and never renewed.
    const server = this.eventsClock.observed || this.heartbeatsClock.observed ? this.clock.now() : this.leaseClock.observed ? this.leaseClock.now() : undefined;
    // Deliveries bound the server's clock from below only, late by the link: with our own appends read back bounding
    // it from above, a healthy clock behind a slow link keeps its exact times (they were dated 1.4 s back; an attack).
    const hi = this.ceiling.offset();
    const at = server === undefined ? wall : hi === undefined ? stampTime(wall, server) : eventTimeMs(wall, mono, { lo: server - mono, hi: Math.max(hi, server - mono) });
    const event = createEvent(type, data, this.cfg.id, new Date(at));
    if (eventId) event.id = eventId;
    if (this.sentAt.size >= SENT_AT_KEPT) this.sentAt.delete(this.sentAt.keys().next().value as string);
    // The first send of an id only: a repeat of a stored one (a fixed id) is dropped by the server, whose stamp is the first's.
    if (!this.sentAt.has(event.id)) this.sentAt.set(event.id, mono);
    try {
      const ack = await this.appender.append(event as TroupeEvent, { expectLastSubjectSequence: expect });
      this.logDown = undefined;
      return ack;
    } catch (e) {
      this.counters.appendFailures++;
      if (/wrong last sequence/i.test((e as Error).message)) this.counters.guardConflicts++;
      // The log cannot be written (no stream leader, JetStream starting, connection lost): the workers cannot write their heartbeats and progress either.
      else if (isNatsOutage(e)) this.logLooksDown(e as Error);
      throw e;
    }
  }

  /**
   * An append the log refused for want of a log: silence is no evidence from now (decide), and dispatch waits
   * 100 ms, then twice as long after each refusal past the wait, up to 2 s, until an append goes through.
   * Retrying at once spun ~10,000 refused assignments a second through a cluster's failover
   * (tests/integration/cluster.test.ts), loading the members that were electing a new leader.
   */
  private logLooksDown(e: Error) {
    const now = Date.now();
    this.connectedSinceMs = monoNow();
    const d = this.logDown;
    if (d && now < d.untilMs) return;
    const waitMs = d ? Math.min(LOG_DOWN_MAX_WAIT_MS, d.waitMs * 2) : LOG_DOWN_FIRST_WAIT_MS;
    this.logDown = { untilMs: now + waitMs, waitMs };
    if (!d) this.log.warn({ err: e.message, ...(isStorageFull(e) ? { hint: STORAGE_FULL_HINT } : {}) }, "the event log refuses appends; dispatch waits until it takes them again");
    clearTimeout(this.logDownTimer);
    this.logDownTimer = setTimeout(() => this.scheduleDispatch(), waitMs + 1);
  }

  /** The NATS server's time now, as this master estimates it (what leases and notBefore times are on). */
  serverNow(): number {
    return this.clock.now();
  }

  /** The event stream's name. */
  get eventStream(): string {
    return storeNames(this.cfg.prefix).events;
  }

  /** The subject of the event stored at `seq` (undefined when there is none). */
  async eventSubjectAt(seq: number): Promise<string | undefined> {
    this.jsm ??= await this.js.jetstreamManager();
    const m = await this.jsm.streams.getMessage(this.eventStream, { seq });
    return m?.subject;
  }

  /** A request to a worker, answered within the assignment timeout. */
  request(subject: string, body: string, headers?: ReturnType<typeof natsHeaders>) {
    return this.appender.requests.request(subject, body, { timeoutMs: this.cfg.assignTimeoutMs, ...(headers ? { headers } : {}) });
  }

  /**
   * Tells a worker to stop attempts the log has taken from it, which its heartbeat still lists: a worker paused past
   * its lease (or lost and back) ran its old attempts to their end beside the new ones, twice the side effects, and
   * its slots stayed full (an attack run). At most once per STALE_CANCEL_EVERY_MS per attempt. For a settled job,
   * the attempts its compact entry keeps as strays (a paused worker ran its old attempt to the end after the job
   * completed elsewhere: fenced out, but a slot and a browser spent for nothing).
   */
  private cancelStaleAttempts(workerId: string, jobIds: readonly string[]) {
    this.noteListing(workerId, jobIds);
    if (!this.isLeader || !this.ready || jobIds.length === 0) return;
    const now = Date.now();
    for (const jobId of jobIds) {
      if (this.pendingJobs.has(jobId)) continue;
      const job = this.state.jobs.get(jobId);
      if (!job) {
        const f = this.state.finished.get(jobId);
        for (const r of f?.strays ?? []) {
          if (r.workerId === workerId) this.remindStale(workerId, jobId, r.attempt, `job ${jobId} is ${f!.status}: attempt ${r.attempt} must not run on`, now);
        }
        continue;
      }
      // It runs the job's current attempt: a worker runs one attempt of a job at a time (it refuses another as
      // `duplicate`), so no older one runs beside it (an attack saw reminders every 10 s for the whole new attempt).
      if ((job.status === "assigned" || job.status === "running") && job.workerId === workerId) continue;
      // The heartbeat names the job, not the attempt: every attempt this worker was given and did not refuse.
      // Offered the job again while it still ran an old attempt, it refused each offer (`duplicate`), and the
      // newest attempt in its name was one of those, which it does not run (a review).
      for (const rec of job.history) {
        if (rec.workerId !== workerId || rec.requeueReason === "worker-refused") continue;
        this.remindStale(workerId, jobId, rec.attempt, `attempt ${rec.attempt} is no longer this worker's: the log gave the job attempt ${job.attempt}; it must not run on`, now);
      }
    }
  }

  /** One cancel for an attempt a worker runs on, unless its end was read or it was told within STALE_CANCEL_EVERY_MS. */
  private remindStale(workerId: string, jobId: string, attempt: number, reason: string, now: number) {
    const key = `${jobId}:${attempt}`;
    if (this.endedStale.has(key)) return;
    if ((this.staleCancels.get(key) ?? 0) > now) return;
    if (this.staleCancels.size >= STALE_CANCELS_KEPT) for (const [k, until] of this.staleCancels) if (until <= now) this.staleCancels.delete(k);
    this.staleCancels.set(key, now + STALE_CANCEL_EVERY_MS);
    this.log.info({ workerId, jobId, attempt }, "worker still runs an attempt the log took from it; telling it to stop");
    void this.cancelOnWorker(workerId, jobId, attempt, reason);
  }

  /** Which jobs each worker's latest heartbeat lists, and the other way round: a job is not offered to a worker
   *  that still runs an older attempt of it (it would refuse as `duplicate`, and each refusal spent an attempt number). */
  private noteListing(workerId: string, jobIds: readonly string[]) {
    const before = this.listing.get(workerId);
    if (!before?.size && jobIds.length === 0) return;
    for (const id of before ?? []) this.listedBy.get(id)?.delete(workerId);
    const now = new Set(jobIds);
    for (const id of now) {
      let by = this.listedBy.get(id);
      if (!by) this.listedBy.set(id, (by = new Set()));
      by.add(workerId);
    }
    for (const id of before ?? []) if (this.listedBy.get(id)?.size === 0) this.listedBy.delete(id);
    if (now.size) this.listing.set(workerId, now);
    else this.listing.delete(workerId);
  }

  /** A fenced-out attempt's end was read: it runs no more. */
  private staleEnded(jobId: string, workerId: string, attempt: number) {
    this.attemptEnded(jobId, attempt);
    this.unlist(jobId, workerId);
  }

  /** An attempt runs nowhere (its end was read, or its worker refused it): no reminder, no stray kept for it. */
  private attemptEnded(jobId: string, attempt: number) {
    if (this.endedStale.size >= STALE_CANCELS_KEPT) this.endedStale.delete(this.endedStale.values().next().value as string);
    this.endedStale.add(`${jobId}:${attempt}`);
    this.dropEndedStrays(jobId);
  }

  /** A settled job's strays whose end was read run nowhere: the entry goes back to its small size. Replaced, not
   *  changed: a snapshot being written may hold the old entry. */
  private dropEndedStrays(jobId: string) {
    const f = this.state.finished.get(jobId);
    if (!f?.strays) return;
    const left = f.strays.filter((r) => !this.endedStale.has(`${jobId}:${r.attempt}`));
    if (left.length === f.strays.length) return;
    const { strays: _, ...rest } = f;
    this.state.finished.set(jobId, left.length ? { ...rest, strays: left } : rest);
  }

  private unlist(jobId: string, workerId: string) {
    const by = this.listedBy.get(jobId);
    if (by?.delete(workerId) && by.size === 0) this.listedBy.delete(jobId);
    this.listing.get(workerId)?.delete(jobId);
  }

  async cancelOnWorker(workerId: string, jobId: string, attempt: number, reason: string): Promise<void> {
    try {
      const r = await this.request(this.subjects.workerCommand(workerId, "cancel"), JSON.stringify({ jobId, attempt, reason }));
      const d = decodeReply("ack", r.data);
      if (!d.ok) this.log.warn({ workerId, jobId, error: d.error }, "invalid answer to a cancel");
    } catch (e) {
      this.log.info({ workerId, jobId, err: (e as Error).message }, "cancel not delivered to the worker");
    }
  }

  // ---- recovery --------------------------------------------------------------

  private tick() {
    this.noticeStall(monoNow());
    this.releaseWaiters(Date.now());
    if (this.seqWaiters.length > 0) this.releaseSeqWaiters(Date.now());
    if (this.ready) for (const id of this.state.needSpec) void this.readSpec(id);
    for (const id of this.unconfirmed.keys()) void this.confirm(id);
    if (this.queue.size > 0 || this.delayed.size > 0) this.scheduleDispatch();
    if (this.ready) {
      const forgotten = forgetUnregistered(this.state, this.clock.now(), this.cfg);
      if (forgotten.length) this.log.warn({ workers: forgotten.slice(0, 20), count: forgotten.length }, "forgot silent workers that only ever sent heartbeats (never registered)");
    }
    const epoch = this.epoch;
    if (!epoch || !this.ready || this.blindFollowers.size > 0) return;
    if (this.decideNow().length > 0) this.confirming ??= this.decideCaughtUp(epoch).finally(() => (this.confirming = undefined));
    const since = this.state.appliedSeq - Math.max(this.snapshotAttemptSeq, this.counters.snapshotSeq);
    const entries = this.state.jobs.size + this.state.finished.size + this.state.workers.size;
    if (!this.snapshotting && snapshotDue(since, this.cfg.snapshotEvery ?? 0, entries)) {
      this.snapshotting = this.writeSnapshot().finally(() => (this.snapshotting = undefined));
    }
  }

  /**
   * A tick far later than its interval means this process did not run meanwhile. After a pause
   * Node runs due timers before it reads the socket, so the heartbeats and progress written during
   * the pause are still unread when the tick decides: without this, every worker would be declared
   * lost and every running attempt requeued for the master's own pause. Silence during it is no evidence
   * (services/master/test/lease.test.ts).
   */
  private noticeStall(nowMs: number) {
    const late = this.lastTickMs ? nowMs - this.lastTickMs - this.cfg.tickMs : 0;
    this.lastTickMs = nowMs;
    const wasLate = this.lateTick;
    this.lateTick = late > stallToleranceMs(this.cfg.tickMs);
    // Only a pause after ticks on time: a master late on every tick (saturated) must still decide.
    if (!this.lateTick || wasLate) return;
    this.awakeSinceMs = nowMs;
    this.counters.stalls++;
    this.log.warn({ stalledMs: late + this.cfg.tickMs }, "this master did not run for a while; liveness windows and leases count again from now");
  }

  /**
   * A stream without a leader (a cluster electing one after a member died) stores no heartbeat and no
   * progress, while this master's followers and connection look fine: the workers' silence then is the
   * log's, not theirs. Each second both streams are asked for their leader; while one has none (or
   * does not answer) silence is no evidence (decide), so the windows count from when both have one
   * again. Seen in tests/integration/cluster.test.ts once the followers came back within seconds:
   * every worker was declared lost while the heartbeat stream had no leader.
   */
  private async watchStreams() {
    if (this.checkingStreams || this.stopping) return;
    this.checkingStreams = true;
    try {
      this.healthJsm ??= await jetstreamManager(this.nc, { timeout: STREAM_CHECK_MS * 1.5 });
      const names = storeNames(this.cfg.prefix);
      for (const stream of [names.events, names.heartbeats]) {
        let why: string | undefined;
        try {
          const si = await this.healthJsm.streams.info(stream);
          if (si.cluster && !si.cluster.leader) why = "no leader";
        } catch (e) {
          why = (e as Error).message;
        }
        if (why) {
          this.connectedSinceMs = monoNow();
          if (!this.leaderless.has(stream)) this.log.warn({ stream, why }, "a stream cannot store anything right now; silence is no evidence until it can");
          this.leaderless.add(stream);
        } else if (this.leaderless.delete(stream)) {
          this.connectedSinceMs = monoNow();
          this.log.info({ stream }, "the stream has a leader again");
        }
      }
    } catch (e) {
      this.log.debug({ err: (e as Error).message }, "could not check the streams");
    } finally {
      this.checkingStreams = false;
    }
  }

  // ---- snapshots -------------------------------------------------------------

  private snapshotStore(): Promise<ObjectStore> {
    const open = (this.snapshots ??= new Objm(this.nc).open(storeNames(this.cfg.prefix).masterSnapshots));
    // A failed open is tried again next time.
    open.catch(() => (this.snapshots = undefined));
    return open;
  }

  /**
   * Loads the latest snapshot into the (empty) state and returns the sequence
   * to follow the log from; undefined, with the reason logged, when the whole
   * log must be replayed: no snapshot, an unreadable or invalid one, or a log
   * that does not go on from it (reset, or events after it removed).
   */
  private async loadSnapshot(): Promise<number | undefined> {
    const names = storeNames(this.cfg.prefix);
    let bytes: Uint8Array | null;
    try {
      // An outage is waited out (the log cannot be read meanwhile either); anything else falls back to the whole log.
      bytes = (await this.untilAnswered("read the state snapshot", async () => (await readLatestSnapshot(await this.snapshotStore()))?.bytes ?? null)) ?? null;
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, "could not read the state snapshot; replaying the whole log");
      return undefined;
    }
    // Let go by stop(): nothing was read, and nothing will be replayed.
    if (this.stopping) return undefined;
    if (!bytes) {
      this.log.info("no state snapshot yet; replaying the whole log");
      return undefined;
    }
    const d = decodeSnapshot(bytes, { prefix: this.cfg.prefix });
    if (!d.ok) {
      this.log.warn({ error: d.error, bytes: bytes.length }, "ignoring an invalid state snapshot; replaying the whole log");
      return undefined;
    }
    const stream = await this.untilAnswered("read the event stream's state", async () => {
      this.jsm ??= await this.js.jetstreamManager();
      return (await this.jsm.streams.info(names.events)).state;
    });
    if (!stream) return undefined;
    const r = resumeFrom(d.state.appliedSeq, stream);
    if (!r.ok) {
      this.log.warn({ snapshotSeq: d.state.appliedSeq, firstSeq: stream.first_seq, lastSeq: stream.last_seq, reason: r.reason }, "the state snapshot does not fit the log; replaying the whole log");
      return undefined;
    }
    Object.assign(this.state, d.state);
    this.counters.startSnapshotSeq = d.state.appliedSeq;
    this.counters.snapshotSeq = d.state.appliedSeq;
    // What the fold would have queued on its way here.
    for (const job of this.state.jobs.values()) if (isWaiting(job) && !this.state.needSpec.has(job.id)) this.enqueue(job);
    this.log.info({ snapshotSeq: d.state.appliedSeq, writtenBy: d.snapshot.writtenBy, writtenAt: d.snapshot.writtenAt, lastSeq: stream.last_seq }, "state snapshot loaded; following the log after it");
    return r.startSeq;
  }

  /** Writes a snapshot of the state as it stands now, after any being written (tests; an operator's tool could use it too). */
  async snapshotNow(): Promise<void> {
    while (this.snapshotting) await this.snapshotting;
    this.snapshotting = this.writeSnapshot().finally(() => (this.snapshotting = undefined));
    await this.snapshotting;
  }

  /** Writes the state as it stands (captured at once, serialised in slices between which the leader goes on working, then uploaded) over the previous snapshot. */
  private async writeSnapshot(): Promise<void> {
    const seq = this.state.appliedSeq;
    this.snapshotAttemptSeq = seq;
    const t0 = Date.now();
    try {
      const bytes = await encodeSnapshotSliced(this.state, { prefix: this.cfg.prefix, writtenBy: this.cfg.id, writtenAt: new Date().toISOString() });
      this.jsm ??= await this.js.jetstreamManager();
      await writeSnapshotObject(await this.snapshotStore(), this.jsm, storeNames(this.cfg.prefix).masterSnapshotsStream, { seq, bytes, description: `master state at sequence ${seq}` });
      this.counters.snapshotSeq = seq;
      this.counters.snapshotsWritten++;
      this.log.info({ seq, bytes: bytes.length, ms: Date.now() - t0 }, "state snapshot written");
    } catch (e) {
      this.log.warn({ seq, err: (e as Error).message }, `could not write a state snapshot; trying again after ${this.cfg.snapshotEvery} more events (or as many as the state has entries)`);
    }
  }

  private decideNow(asOfMs = Number.POSITIVE_INFINITY): Decision[] {
    return decide(this.state, Math.min(this.decisionTime(), asOfMs), this.cfg, (id) => this.pendingJobs.has(id) || this.pendingWorkers.has(id), this.seeingSince(), this.clock.now());
  }

  /** Since when (server time) silence is evidence: not before this master led, was connected and awake. */
  private seeingSince(): number {
    return this.clock.toServer(Math.max(this.leaderSinceMs, this.connectedSinceMs, this.awakeSinceMs));
  }

  /**
   * Applies the silence-based decisions (a lapsed lease, a lost worker, an expired job) only once the fold has
   * reached every message the two streams held when they were made, deciding again then. A follower's `pending`
   * count says nothing of messages stored after its last delivery: on a loaded machine the master's reads fell
   * behind by more than a lease, and it requeued a job whose completion was already stored (a test saw it).
   */
  private async decideCaughtUp(epoch: number): Promise<void> {
    const names = storeNames(this.cfg.prefix);
    let last: [number, number];
    // What the streams hold when asked is what the fold will have seen: silences are judged as of then, not of when
    // the answer arrives (a slow link from NATS delivers the answer, and everything stored since, late).
    const asOfMs = this.clock.now();
    try {
      this.jsm ??= await this.js.jetstreamManager();
      const [ev, hb] = await Promise.all([this.jsm.streams.info(names.events), this.jsm.streams.info(names.heartbeats)]);
      last = [streamHead(ev.state), streamHead(hb.state)];
    } catch (e) {
      this.log.info({ err: (e as Error).message }, "could not read the streams' last sequences; silence-based decisions wait for the next tick");
      return;
    }
    const deadline = Date.now() + CATCH_UP_MS;
    // The fold's place in the event log: a start from a snapshot at the log's end delivers nothing, and its place is
    // the snapshot's (a review: no worker was ever declared lost on an idle pool after such a start).
    const eventsAt = () => Math.max(this.eventsSeq, this.state.appliedSeq);
    let asOf = asOfMs;
    while (eventsAt() < last[0] || this.heartbeatsSeq < last[1]) {
      if (this.stopping) return;
      if (Date.now() > deadline) {
        // Saturated (a large pool's heartbeats): still decide, as of the stamps of what it has read from each stream —
        // a master late on every tick must go on declaring the dead lost.
        asOf = Math.min(asOf, ...[this.eventsAt.timeMs, this.heartbeatsAt.timeMs].filter((t) => t > 0));
        this.log.info({ folded: [eventsAt(), this.heartbeatsSeq], stored: last, asOf: new Date(asOf).toISOString() }, "the fold is behind the streams; deciding as of what it has read");
        break;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    if (this.epoch !== epoch || !this.ready) return;
    for (const d of this.decideNow(asOf)) void this.apply(d, epoch);
  }

  /**
   * The time leases and silences are judged at: now, unless the fold is behind
   * a stream, then the time of the last message folded from it. A master that
   * lags must not take its own lag for a silent worker or a lapsed lease.
   */
  private decisionTime(): number {
    let t = this.clock.now();
    if (this.eventsAt.behind) t = Math.min(t, this.eventsAt.timeMs);
    if (this.heartbeatsAt.behind) t = Math.min(t, this.heartbeatsAt.timeMs);
    return t;
  }

  private async apply(d: Decision, epoch: number) {
    // Decided under an epoch this master no longer leads with: deposed while it waited for a worker's answer (paused
    // past its lease), it requeued a job the new leader had decided nothing about yet, so the epoch fence let it in,
    // and sent the worker a cancel for the attempt it had accepted (a soak). The next leader decides instead.
    if (this.epoch !== epoch) {
      this.log.warn({ decision: d, epoch, leading: this.epoch }, "no longer the leader with the epoch this decision was taken under: not recording it");
      return;
    }
    const key = d.kind === "worker-lost" ? d.workerId : d.jobId;
    if (d.kind === "worker-lost") this.pendingWorkers.set(key, 0);
    else this.pendingJobs.set(key, {});
    try {
      let seq: number;
      if (d.kind === "worker-lost") {
        seq = (await this.append("worker.lost", { workerId: d.workerId, ...(d.instanceId ? { instanceId: d.instanceId } : {}), lastSeen: new Date(d.lastSeenMs).toISOString(), epoch, jobIds: d.jobIds }, this.subjects.worker(d.workerId, "lost"))).seq;
        this.log.warn({ workerId: d.workerId, jobIds: d.jobIds }, "worker lost");
      } else if (d.kind === "requeue") {
        seq = (await this.append("job.requeued", {
          jobId: d.jobId, attempt: d.attempt, previousAttempt: d.previousAttempt, ...(d.previousWorkerId ? { previousWorkerId: d.previousWorkerId } : {}),
          reason: d.reason, notBefore: new Date(d.notBeforeMs).toISOString(), epoch,
        }, this.subjects.job(d.jobId, "requeued"))).seq;
        this.log.info({ jobId: d.jobId, attempt: d.attempt, reason: d.reason }, "job requeued");
      } else {
        seq = (await this.append("job.dead", { jobId: d.jobId, reason: d.reason, attempts: Math.max(0, d.attempts), ...(d.lastError ? { lastError: d.lastError } : {}), epoch }, this.subjects.job(d.jobId, "dead"))).seq;
        this.log.warn({ jobId: d.jobId, reason: d.reason }, "job dead");
      }
      if (seq <= this.state.appliedSeq) this.clearDecision(d.kind, key);
      else if (d.kind === "worker-lost") this.pendingWorkers.set(key, seq);
      else this.pendingJobs.set(key, { untilSeq: seq });
    } catch (e) {
      this.log.warn({ decision: d, err: (e as Error).message }, "could not append a decision; retrying on the next tick");
      this.clearDecision(d.kind, key);
    }
  }

  private clearDecision(kind: Decision["kind"], key: string) {
    if (kind === "worker-lost") this.pendingWorkers.delete(key);
    else this.clearPending(key);
  }

  /** A fresh master id: host-pid-random, unless configured. */
  static defaultId(): string {
    return `master-${process.pid}-${newId().slice(-6)}`;
  }
}

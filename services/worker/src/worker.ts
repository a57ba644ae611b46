import { readFileSync } from "node:fs";
import { cpus } from "node:os";
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import type { Msg, NatsConnection, Subscription } from "@nats-io/nats-core";
import { Svcm, type Service } from "@nats-io/services";
import {
  ASSIGNED_AGE_HEADER, createEvent, decodeCommand, decodeReply, errorBody, JOB_LEASE_HEADER, monoNow, newId, parseAssignedAgeHeader, parseJobLeaseHeader, subjectsFor, type AckReply, type AssignReply, type Command, type EventData,
  type EventType, type Subjects, type WorkerStatus,
} from "@troupe/events";
import { closeConnection, connectAs, INSTANCE_HEADER, isNoResponders, isStorageFull, passwordVar, userVar, workerCredential, putArtifact, WORKER_SERVICE_NAME, workerInboxPrefix, loadSecretsKeys, openSecretWithAny, publishEvent, SECRETS_KEY_VAR, SecretError, storeNames, type Logger } from "@troupe/events/node";
import { admit } from "./admission.ts";
import { BrowserPool } from "./browser-pool.ts";
import { ServerTimeSampler } from "./clock-sample.ts";
import type { WorkerConfig } from "./config.ts";
import { JobAbort, runJob, type JobReporter, type RunningJob } from "./job.ts";
import { doubtAfterMs, leaseSilenceHolds, LinkFence, type SilenceWatch } from "./link-fence.ts";
import { MetricsSampler } from "./metrics.ts";
import { assertNoDuplicate, findOtherInstance, presenceInfo, servePresence, type PresenceInfo } from "./presence.ts";
import { publishReliably } from "./publish.ts";
import { formatUptime, JobStats } from "./stats.ts";
import { progressEveryMs } from "./lease-cadence.ts";
import { failureWaitMs } from "./failure-shot.ts";
import { startStatusServer, type StatusBody, type StatusServer } from "./status-server.ts";
import { sleep, StepError } from "./steps.ts";

/** How often a held attempt looks whether the link is back (and asks for a heartbeat). */
const HOLD_POLL_MS = 250;
/** After the link is back and the leader did not answer the attempt check, how long a held attempt waits for the master's cancel before it goes on. */
export const CONFIRM_SETTLE_MS = 2000;
/** How often a check nobody answered ("no responders") or a leader not ready yet is asked again. */
const CHECK_RETRY_MS = 500;
/** How long a job's final event is tried before the worker gives up on it (other events: publishReliably's 2 min). */
export const FINAL_EVENT_DEADLINE_MS = 15 * 60_000;

export const WORKER_VERSION: string = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;

const encoder = new TextEncoder();
const json = (v: unknown) => encoder.encode(JSON.stringify(v));

export interface WorkerOptions {
  log: Logger;
  /** Where NATS credentials are read from (tests pass the harness's). */
  env?: Record<string, string | undefined>;
  /** Progress cadence while a step runs (default: 5 s, or a third of the job lease when shorter). */
  progressEveryMs?: number;
  /**
   * What the page, then the store, each get at a failure (default: failureWaitMs of the job lease). Tests of a healthy
   * page's failure shot give it more than a loaded machine can take: the budget is not what they test.
   */
  failureWaitMs?: number;
  /** Gives up starting (waiting for NATS, or for the registration to be stored); start() then rejects and everything opened is closed. */
  abort?: AbortSignal;
}

/**
 * One worker process: registration, presence, heartbeats, the assign/cancel/drain
 * endpoints (a NATS micro service), /status, and the jobs it runs.
 */
export class Worker {
  readonly instanceId = newId("i");
  /** The NATS user it connects as (for a message when the server refuses it). */
  natsUser = "";
  readonly stats = new JobStats();
  readonly running = new Map<string, RunningJob>();
  private readonly startedAt = Date.now();
  private readonly subjects: Subjects;
  private readonly log: Logger;
  private nc!: NatsConnection;
  private js!: JetStreamClient;
  private service: Service | null = null;
  private presenceSub: Subscription | null = null;
  /** What this process answers on its presence subject (its start time decides which of two twins stays). */
  private presence!: PresenceInfo;
  private status: StatusServer | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  /** The heartbeat being published, if any: a slow one is never stacked behind another, and a stop waits for it. */
  private heartbeatInFlight: Promise<void> | null = null;
  private serverTime?: ServerTimeSampler;
  /** Set by stop(): publishes stop retrying after this (the drain grace plus 10 s). */
  private giveUpAtMs = Number.POSITIVE_INFINITY;
  private highestEpoch = 0;
  private draining: Promise<void> | null = null;
  /** The current drain's `worker.draining` publish (settles, never rejects). */
  private drainAnnounced: Promise<void> = Promise.resolve();
  /** Ends the current drain's wait for its running jobs (a resume). */
  private endDrain: (() => void) | null = null;
  private stopping: Promise<void> | null = null;
  readonly pool: BrowserPool;
  readonly metrics: MetricsSampler;
  /** Malformed commands received (answered as invalid, never run). */
  invalidCommands = 0;
  /** When NATS last proved the link worked (link-fence.ts). */
  readonly fence: LinkFence;
  /** Steps held because the link was in doubt (tests read it; the log says each). */
  holds = 0;
  /** Of those, the holds for the attempt's own unacknowledged lease renewals alone (leaseSilenceHolds). */
  holdsForLease = 0;
  /** What held attempts heard from the leader's attempt check: yes, no, or nothing (they waited for a cancel). */
  readonly checks = { confirmed: 0, stopped: 0, unanswered: 0 };
  /** When the latest acknowledged heartbeat was sent (monoNow): a hold ends only after one sent since it began. */
  private heartbeatStoredSentMs = Number.NEGATIVE_INFINITY;
  /** When the latest heartbeat acknowledgement arrived (monoNow; the registration's before the first). */
  private heartbeatAckedAtMs: number | undefined;
  /** The master's job lease last logged as differing from ours (followLease). */
  private leaseToldMs: number | undefined;
  /** Assignments meant for another process with this worker id (they are ignored). */
  foreignAssignments = 0;
  /** Open the proxy passwords the master sealed: the current TROUPE_SECRETS_KEY first, then rotated-out ones (jobs sealed before a rotation still open); empty when this worker has none. */
  private secretsKeys: Buffer[] = [];

  constructor(readonly config: WorkerConfig, private readonly o: WorkerOptions) {
    this.log = o.log.child({ workerId: config.workerId });
    this.subjects = subjectsFor(config.prefix);
    this.pool = new BrowserPool({ executablePath: config.chromiumPath, recycleAfter: config.recycleAfter, log: this.log, chromium: { webrtcUdp: config.webrtcUdp } });
    this.metrics = new MetricsSampler(Math.min(5000, Math.max(1000, config.heartbeatMs)), this.log);
    this.fence = new LinkFence(doubtAfterMs(config.heartbeatMs, config.jobLeaseMs));
  }

  get statusPort(): number {
    return this.status?.port ?? 0;
  }
  get statusUrl(): string {
    return this.status?.url ?? "";
  }
  get isDraining(): boolean {
    return this.draining !== null;
  }

  /** Status as the heartbeat and /status say it: busy while any job runs. */
  get workerStatus(): WorkerStatus {
    if (this.draining) return "draining";
    return this.running.size > 0 ? "busy" : "online";
  }

  /** Connects, refuses a duplicate id, starts the browser, serves, registers, heartbeats. */
  async start(): Promise<void> {
    const c = this.config;
    // A malformed key stops the start with a message that names it; a missing one only matters for jobs with a proxy password.
    this.secretsKeys = loadSecretsKeys(c.dataDir, this.o.env ?? process.env);
    // Said at start, not only per refused job (which only the master's log showed): a remote worker set up without it.
    if (this.secretsKeys.length === 0) this.log.warn(`no ${SECRETS_KEY_VAR} (environment or ${c.dataDir}/credentials.env): jobs with a proxy password will be refused here; copy the line from the master's credentials.env`);
    const env = this.o.env ?? process.env;
    const cred = workerCredential(c.dataDir, c.workerId, env);
    this.natsUser = cred.user;
    this.log.info({ natsUser: cred.user, from: cred.from }, "NATS credential");
    if (cred.problem) this.log.warn({ err: cred.problem }, "worker-users.json not read: connecting as the shared worker user");
    this.nc = await connectAs({ url: c.natsUrl, ca: c.natsCa, role: "worker", dataDir: c.dataDir, name: `troupe-worker ${c.workerId}`, log: this.log, waitOnFirstConnect: true, env: { ...env, [userVar("worker")]: cred.user, [passwordVar("worker")]: cred.password }, noAsyncTraces: true, inboxPrefix: workerInboxPrefix(c.workerId), ...(this.o.abort ? { abort: this.o.abort } : {}) });
    this.js = jetstream(this.nc);
    this.serverTime = new ServerTimeSampler(this.nc, `$JS.API.DIRECT.GET.${storeNames(c.prefix).heartbeats}.${this.subjects.heartbeat(c.workerId)}`, this.log);
    const me = (this.presence = presenceInfo(c.workerId, this.instanceId));
    await assertNoDuplicate(this.nc, c.prefix, me);
    this.presenceSub = servePresence(this.nc, c.prefix, me);
    await Promise.all([this.metrics.start(), this.pool.start()]);
    this.status = await startStatusServer({ host: c.host, port: c.port, scan: c.scanPorts, status: () => this.statusBody(), healthy: () => !this.nc.isClosed() && !this.stopping });
    this.service = await new Svcm(this.nc).add({
      name: WORKER_SERVICE_NAME,
      version: WORKER_VERSION,
      description: `Troupe worker ${c.name}`,
      // Each worker owns its subjects; no queue group.
      queue: "",
      metadata: { workerId: c.workerId, instanceId: this.instanceId, name: c.name, type: c.type },
      statsHandler: async () => ({ status: this.workerStatus, currentJobs: this.running.size, maxJobs: c.maxJobs, completed: this.stats.completed, failed: this.stats.failed, invalidCommands: this.invalidCommands }),
    });
    this.service.addEndpoint("assign", { subject: this.subjects.workerCommand(c.workerId, "assign"), handler: (err, msg) => this.guarded("assign", err, msg, () => this.onAssign(msg)) });
    this.service.addEndpoint("cancel", { subject: this.subjects.workerCommand(c.workerId, "cancel"), handler: (err, msg) => this.guarded("cancel", err, msg, () => this.onCancel(msg)) });
    this.service.addEndpoint("drain", { subject: this.subjects.workerCommand(c.workerId, "drain"), handler: (err, msg) => this.guarded("drain", err, msg, () => this.onDrain(msg)) });
    this.service.addEndpoint("resume", { subject: this.subjects.workerCommand(c.workerId, "resume"), handler: (err, msg) => this.guarded("resume", err, msg, () => this.onResume(msg)) });
    await this.publish("worker.registered", this.registration(), { deadlineMs: Number.POSITIVE_INFINITY, stopped: () => this.o.abort?.aborted === true });
    this.log.info({ instanceId: this.instanceId, statusPort: this.status.port }, "worker registered");
    // The registration's acknowledgement is where the first heartbeat's gap counts from.
    this.heartbeatAckedAtMs = monoNow();
    this.sendHeartbeat();
    this.heartbeatTimer = setInterval(() => this.sendHeartbeat(), c.heartbeatMs);
    void this.watchReconnects();
  }

  private registration(): EventData<"worker.registered"> {
    const c = this.config;
    return {
      workerId: c.workerId,
      instanceId: this.instanceId,
      name: c.name,
      type: c.type,
      ip: c.ip,
      port: this.status?.port ?? 0,
      version: WORKER_VERSION,
      capabilities: {
        maxConcurrentJobs: c.maxJobs,
        memory: c.memoryMb,
        cpu: Math.max(1, cpus().length),
        supportedBrowsers: [{ name: "chromium", version: (this.pool.version.split("/")[1] ?? this.pool.version).slice(0, 64) }],
        ...(c.labels.length ? { labels: c.labels } : {}),
        attemptTokens: true,
        // Only when on: the master offers a job with a page-JavaScript step to no worker that does not say so.
        ...(c.allowScriptSteps ? { scriptSteps: true as const } : {}),
      },
    };
  }

  private async watchReconnects(): Promise<void> {
    for await (const s of this.nc.status()) if (s.type === "reconnect") void this.afterReconnect();
  }

  /** The check after a silence that is running, if any (one at a time). */
  private checkingReplaced: Promise<boolean> | null = null;

  /**
   * After a reconnect (a network outage, a NATS restart, this process paused past the server's ping window):
   * if another process now answers for this worker id, this one was replaced while away and must go (`superseded`);
   * otherwise it registers again, so a master whose log lost its registration (a reset stream) knows it again.
   * Public so tests can drive it without cutting a connection.
   */
  async afterReconnect(): Promise<void> {
    if (this.stopping || this.isDraining) return;
    if (await this.checkReplaced()) return;
    if (this.stopping || this.isDraining) return;
    try {
      await this.publish("worker.registered", this.registration(), { deadlineMs: Date.now() + 30_000 });
      this.log.info({ instanceId: this.instanceId }, "registered again after a reconnect");
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, "could not register again after a reconnect (heartbeats go on)");
    }
  }

  /**
   * After a silence the connection outlived (see sendHeartbeat): the same check, without registering again (the
   * master takes a heartbeat after a silence as the worker back; a loaded machine's stall is no reason to re-register).
   */
  private checkReplacedAfterSilence(): void {
    if (this.stopping || this.isDraining || this.checkingReplaced) return;
    this.checkingReplaced = this.checkReplaced()
      .catch((e: Error) => { this.log.warn({ err: e.message }, "could not check for another process with this worker id"); return false; })
      .finally(() => (this.checkingReplaced = null));
  }

  /** True when a newer process answers for this worker id (this one is then superseded). */
  private async checkReplaced(): Promise<boolean> {
    const other = await findOtherInstance(this.nc, this.config.prefix, this.presence);
    // The newer process is the replacement and stays (both ask after a NATS restart: only the older one goes).
    const replaced = other !== null && (other.startedAt > this.presence.startedAt || (other.startedAt === this.presence.startedAt && other.instanceId > this.instanceId));
    if (other && replaced) {
      this.log.error({ other }, `another process runs worker id ${this.config.workerId} (instance ${other.instanceId}, pid ${other.pid} on ${other.host}): this one was replaced while away; stopping`);
      this.resolveSuperseded(other);
      return true;
    }
    if (other) this.log.warn({ other }, `an older process still runs worker id ${this.config.workerId} (instance ${other.instanceId}); it stops once it notices, and its assignments are left to it`);
    return false;
  }

  private resolveSuperseded: (other: PresenceInfo) => void = () => {};
  private readonly supersededP = new Promise<PresenceInfo>((res) => (this.resolveSuperseded = res));

  /** Resolves when another process with this worker id took over while this one was away (see afterReconnect). */
  superseded(): Promise<PresenceInfo> {
    return this.supersededP;
  }

  /**
   * Retries until `deadlineMs`, but never on a connection closed for good (nats.js gave up, or we closed it),
   * nor past `giveUpAtMs` once the worker is stopping (a job's report would otherwise retry for two minutes).
   */
  private publish<T extends EventType>(type: T, data: EventData<T>, o: { deadlineMs?: number; stopped?: () => boolean; log?: Logger } = {}): Promise<void> {
    const stopped = () => this.nc.isClosed() || Date.now() > this.giveUpAtMs || o.stopped?.() === true;
    const sent = monoNow();
    return publishReliably(this.js, createEvent(type, data, this.config.workerId, this.eventTime()) as never, { subjects: this.subjects, log: this.log, ...o, stopped })
      .then(() => this.fence.saw(sent));
  }

  /** Resolves when the NATS connection is closed for good (with nats.js's reason, if any). */
  closed(): Promise<void | Error> {
    return this.nc.closed();
  }

  /** A handler error is logged and answered in the endpoint's reply shape, never a crash. */
  private guarded(name: "assign" | "cancel" | "drain" | "resume", err: Error | null, msg: Msg, fn: () => void): void {
    if (err) {
      this.log.error({ err: err.message, endpoint: name }, "endpoint subscription error");
      return;
    }
    this.fence.saw();
    try {
      fn();
    } catch (e) {
      const message = `worker error: ${(e as Error).message}`.slice(0, 4000);
      this.log.error({ err: (e as Error).stack, endpoint: name }, "command handler failed");
      const reply: AssignReply | AckReply = name === "assign" ? { accepted: false, reason: "invalid", message } : { ok: false, error: { code: "internal", message } };
      msg.respond(json(reply));
    }
  }

  private onAssign(msg: Msg): void {
    const d = decodeCommand("worker.assign", msg.data);
    if (!d.ok) {
      this.invalidCommands++;
      this.log.warn({ path: d.error.path, reason: d.error.message }, "invalid assign request refused");
      const reply: AssignReply = { accepted: false, reason: "invalid", message: `${d.error.path ? `${d.error.path}: ` : ""}${d.error.message}`.slice(0, 4000), ...(d.error.path ? { field: d.error.path.slice(0, 300) } : {}) };
      msg.respond(json(reply));
      return;
    }
    const cmd = d.value;
    // Meant for another process with this worker id (one paused past its lease while a new one started): the
    // master's worker is that one. No answer from here, so the request gets that process's answer, and the
    // attempt never runs twice.
    const meant = msg.headers?.get(INSTANCE_HEADER);
    if (meant && meant !== this.instanceId) {
      this.foreignAssignments++;
      this.log.warn({ jobId: cmd.jobId, attempt: cmd.attempt, for: meant, instanceId: this.instanceId }, "an assignment for another process with this worker id reached this one: two processes run this worker id; stop one");
      return;
    }
    const lease = parseJobLeaseHeader(msg.headers?.get(JOB_LEASE_HEADER));
    const age = parseAssignedAgeHeader(msg.headers?.get(ASSIGNED_AGE_HEADER));
    if (!lease.ok || !age.ok) {
      const message = [lease, age].flatMap((h) => (h.ok ? [] : [h.message])).join("; ");
      this.invalidCommands++;
      this.log.warn({ jobId: cmd.jobId, attempt: cmd.attempt, reason: message }, "invalid assign request refused");
      msg.respond(json({ accepted: false, reason: "invalid", message } satisfies AssignReply));
      return;
    }
    let reply = admit(cmd, {
      draining: this.isDraining || this.stopping !== null,
      maxJobs: this.config.maxJobs,
      running: new Map([...this.running].map(([id, j]) => [id, j.attempt])),
      load: this.metrics.latest && { cpuUsage: this.metrics.latest.cpuAverage, availableMemoryMb: this.metrics.latest.availableMemoryMb },
      maxCpu: this.config.maxCpu,
      minFreeMemoryMb: this.config.minFreeMemoryMb,
      allowScriptSteps: this.config.allowScriptSteps,
      labels: this.config.labels,
      highestEpoch: this.highestEpoch,
    });
    let proxyPassword: string | undefined;
    if (reply.accepted && cmd.spec.proxy?.sealedPassword !== undefined) {
      const opened = this.openProxyPassword(cmd);
      if (typeof opened === "string") proxyPassword = opened;
      else reply = opened;
    }
    msg.respond(json(reply));
    if (!reply.accepted) {
      this.log.info({ jobId: cmd.jobId, attempt: cmd.attempt, reason: reply.reason, message: reply.message }, "assignment refused");
      return;
    }
    if (this.running.get(cmd.jobId)?.attempt === cmd.attempt) return; // re-sent request: already running
    this.highestEpoch = Math.max(this.highestEpoch, cmd.epoch);
    // A current master names its lease (and serves attempts.check); an assignment without it came from an older one
    // or straight from a tool: "no responders" to a held attempt's check then means no master will answer at all.
    this.startJob(cmd, proxyPassword, this.followLease(lease.ms), lease.ms !== undefined, age.ms ?? 0);
  }

  /** The lease a new attempt runs under: the master's when its assignment says (logged once per value that differs from ours). */
  private followLease(masterLeaseMs: number | undefined): number {
    if (masterLeaseMs === undefined) return this.config.jobLeaseMs;
    if (masterLeaseMs !== this.config.jobLeaseMs && this.leaseToldMs !== masterLeaseMs) {
      this.leaseToldMs = masterLeaseMs;
      this.log.info({ masterLeaseMs, ownLeaseMs: this.config.jobLeaseMs }, "the master runs another job lease than this worker's TROUPE_JOB_LEASE_MS: its attempts follow the master's");
    }
    return masterLeaseMs;
  }

  /** The job's proxy password in clear, or a refusal: a worker that cannot open it says so, and the master tries another one. */
  private openProxyPassword(cmd: Command<"worker.assign">): string | AssignReply {
    const field = "spec.proxy.sealedPassword";
    if (this.secretsKeys.length === 0) return { accepted: false, reason: "invalid", message: `this worker has no ${SECRETS_KEY_VAR} to open the job's proxy password: copy the line from the master's credentials.env`, field };
    try {
      return openSecretWithAny(cmd.spec.proxy?.sealedPassword ?? "", this.secretsKeys, cmd.jobId);
    } catch (e) {
      if (!(e instanceof SecretError)) throw e;
      return { accepted: false, reason: "invalid", message: `job ${cmd.jobId}: ${e.message}`, field };
    }
  }

  /** `assignedAgeMs`: how long before it asked the master's log stored the assignment (ASSIGNED_AGE_HEADER). */
  private startJob(cmd: Command<"worker.assign">, proxyPassword: string | undefined, leaseMs: number, fromCurrentMaster: boolean, assignedAgeMs: number): void {
    // The attempt's token goes back in every event for it: the fold takes them only with it (docs/security.md).
    const base = { jobId: cmd.jobId, workerId: this.config.workerId, attempt: cmd.attempt, ...(cmd.token !== undefined ? { token: cmd.token } : {}) };
    const log = this.log.child({ jobId: cmd.jobId, attempt: cmd.attempt });
    // Silences that end while a step runs hold the attempt before its next one too (link-fence.ts).
    const silence = this.fence.watch();
    // The master's lease for the attempt runs from its stored assignment, which came before this worker heard of it.
    silence.renewedMs -= Math.min(assignedAgeMs, leaseMs);
    // job.started is published while the browser context is being prepared; later events wait for it, so the order holds.
    let started: Promise<void> = Promise.resolve();
    /** A lease renewal of this attempt's was stored: the master's lease for it runs from then (leaseSilenceHolds). */
    const renewed = (sent: number) => void (silence.renewedMs = Math.max(silence.renewedMs, sent));
    const report: JobReporter = {
      started: () => {
        const sent = monoNow();
        return (started = this.publish("job.started", base).then(() => renewed(sent)));
      },
      progress: (p) => {
        const ev = createEvent("job.progress", {
          ...base,
          progress: Math.round(p.progress * 10) / 10,
          currentStep: p.currentStep,
          stepsDone: p.stepsDone,
          stepsTotal: p.stepsTotal,
          metrics: { elapsedMs: p.elapsedMs, memoryUsed: Math.round((process.memoryUsage().rss / 1024 / 1024) * 10) / 10 },
        }, this.config.workerId, this.eventTime());
        return started
          .then(() => {
            const sent = monoNow();
            return publishEvent(this.js, ev, { subjects: this.subjects }).then(() => {
              this.fence.saw(sent);
              renewed(sent);
            });
          })
          .catch((e: Error) => log.warn({ err: e.message }, "progress event not published"));
      },
      // A finished attempt's outcome is worth waiting for (a full store, a long outage): given up after 2 min, a
      // completed result became a worker failure and the whole scenario ran again. Retries log with the job's id.
      completed: async (d) => {
        await started.catch(() => {});
        await this.publish("job.completed", { ...base, ...d }, { deadlineMs: FINAL_EVENT_DEADLINE_MS, log });
      },
      failed: async (d) => {
        await started.catch(() => {});
        await this.publish("job.failed", { ...base, ...d }, { deadlineMs: FINAL_EVENT_DEADLINE_MS, log });
      },
    };
    const job = runJob(cmd, {
      pool: this.pool,
      ...(proxyPassword !== undefined ? { proxyPassword } : {}),
      policy: { allowPrivate: this.config.allowPrivateTargets, allowed: this.config.allowedTargets },
      allowScriptSteps: this.config.allowScriptSteps,
      defaultStepTimeoutMs: this.config.stepTimeoutMs,
      saveArtifact: (name, bytes) => this.saveArtifact(name, bytes),
      failureScreenshots: this.config.failureScreenshots,
      failureWaitMs: this.o.failureWaitMs ?? failureWaitMs(leaseMs),
      report,
      log,
      progressEveryMs: this.o.progressEveryMs ?? progressEveryMs(leaseMs),
      beforeStep: (index, signal, renew) => this.holdWhileCutOff(cmd.jobId, cmd.attempt, index, signal, log, { doubtAfter: doubtAfterMs(this.config.heartbeatMs, leaseMs), leaseMs }, silence, renew, fromCurrentMaster),
      onEnd: (out) => {
        this.stats.record({ ok: out.ok, durationMs: out.durationMs, responseTimeMs: out.responseTimeMs });
        this.endJob(cmd.jobId, this.running.get(cmd.jobId));
      },
    });
    this.running.set(cmd.jobId, job);
    log.info({ url: cmd.spec.url, steps: cmd.spec.scenario?.steps.length ?? 0 }, "job started");
    void job.done
      .then((out) => log.info({ ok: out.ok, durationMs: out.durationMs, error: out.error?.message }, out.ok ? "job completed" : out.error?.code === "cancelled" ? "job cancelled" : "job failed"))
      .catch((e: Error) => log.error({ err: e.message }, "job outcome could not be reported"))
      .finally(() => {
        silence.close();
        this.endJob(cmd.jobId, job);
      });
  }

  /** Frees the job's slot once (before its final event goes out, or after a reporting failure). */
  private endJob(jobId: string, job: RunningJob | undefined): void {
    if (job && this.running.get(jobId) === job) this.running.delete(jobId);
  }

  private onCancel(msg: Msg): void {
    const d = decodeCommand("worker.cancel", msg.data);
    let reply: AckReply;
    if (!d.ok) {
      this.invalidCommands++;
      reply = { ok: false, error: errorBody("invalid", d.error.message, d.error.path || undefined) };
    } else {
      const job = this.running.get(d.value.jobId);
      if (!job || job.attempt !== d.value.attempt) {
        reply = { ok: false, error: { code: "not-found", message: `attempt ${d.value.attempt} of job ${d.value.jobId} is not running on ${this.config.workerId}` } };
      } else {
        job.abort(new JobAbort("cancelled", `cancelled${d.value.reason ? `: ${d.value.reason}` : ""}`, false));
        reply = { ok: true };
      }
    }
    msg.respond(json(reply));
  }

  /** Decodes a drain or resume request; a malformed one is answered `invalid` and counted (undefined then). */
  private ackCommand<N extends "worker.drain" | "worker.resume">(name: N, msg: Msg): Command<N> | undefined {
    const d = decodeCommand(name, msg.data);
    if (d.ok) return d.value;
    this.invalidCommands++;
    msg.respond(json({ ok: false, error: errorBody("invalid", d.error.message) } satisfies AckReply));
    return undefined;
  }

  private onDrain(msg: Msg): void {
    const cmd = this.ackCommand("worker.drain", msg);
    if (!cmd) return;
    void this.drain(cmd.reason ?? "drain requested").catch((e: Error) => this.log.error({ err: e.message }, "drain failed"));
    msg.respond(json({ ok: true } satisfies AckReply));
  }

  private onResume(msg: Msg): void {
    if (!this.ackCommand("worker.resume", msg)) return;
    void this.resume().then((reply) => msg.respond(json(reply)));
  }

  /**
   * Ends a drain that a request started (not a stop): running jobs keep running, the grace no longer fails them,
   * and the worker registers again (the same process), which is what puts it back in the master's pool. Answers
   * only once that registration is stored; one that cannot be stored leaves the worker draining.
   */
  async resume(): Promise<AckReply> {
    if (this.stopping) return { ok: false, error: errorBody("conflict", `worker ${this.config.workerId} is shutting down; start it again to take jobs`) };
    if (!this.draining) return { ok: true };
    // The registration must be stored after the drain's announcement (a retried one landing later would drain it again).
    const drain = this.draining;
    await this.drainAnnounced;
    if (this.stopping) return { ok: false, error: errorBody("conflict", `worker ${this.config.workerId} is shutting down; start it again to take jobs`) };
    if (this.draining !== drain) return { ok: true };
    this.endDrain?.();
    this.endDrain = null;
    this.draining = null;
    try {
      // A draining heartbeat on its way is stored first (the readers also judge it by its time: older than the registration).
      await this.heartbeatInFlight;
      await this.publish("worker.registered", this.registration(), { deadlineMs: Date.now() + 10_000 });
    } catch (e) {
      const message = `the registration that resumes it could not be stored (${(e as Error).message}); it stays draining`;
      this.log.error({ err: (e as Error).message }, "resume failed; draining again");
      void this.drain("resume failed").catch((e2: Error) => this.log.error({ err: e2.message }, "drain failed"));
      return { ok: false, error: errorBody("unavailable", message) };
    }
    // A stop that came meanwhile drains it again: say so, not "resumed".
    if (this.stopping) return { ok: false, error: errorBody("conflict", `worker ${this.config.workerId} is shutting down; start it again to take jobs`) };
    this.log.info({ instanceId: this.instanceId, running: this.running.size }, "resumed: taking jobs again");
    // At once, not at the next interval: the status the readers show comes from it.
    await this.heartbeatInFlight;
    this.sendHeartbeat();
    return { ok: true };
  }

  private saveArtifact(name: string, bytes: Uint8Array): Promise<void> {
    const bucket = storeNames(this.config.prefix).artifacts;
    // Publishes only: a worker's own NATS user may write artifacts but read none (docs/security.md).
    return putArtifact(this.js, bucket, name, bytes, { description: "screenshot (png)", ...(this.nc.info ? { maxPayload: this.nc.info.max_payload } : {}) }).then(
      () => undefined,
      (e: Error) => {
        // Retryable: a store that is full or away now may take it on the next attempt (as a step-failed it was final).
        // A publish to a subject no stream stores comes back as "no responders" (nats.js: "jetstream is not enabled").
        const missing = /no responders|stream not found|jetstream is not enabled/i.test(e.message);
        const why = missing ? " (`troupe init` creates it)" : isStorageFull(e) ? " (JetStream's storage is full)" : "";
        throw new StepError(`screenshot ${name} not stored in object store ${bucket}${why}: ${e.message}`, "storage", true);
      },
    );
  }

  heartbeatData(): EventData<"worker.heartbeat"> {
    const m = this.metrics.latest;
    return {
      workerId: this.config.workerId,
      instanceId: this.instanceId,
      status: this.workerStatus,
      currentJobs: this.running.size,
      maxConcurrentJobs: this.config.maxJobs,
      jobIds: [...this.running.keys()],
      heartbeatMs: this.config.heartbeatMs,
      metrics: {
        memoryUsage: m?.memoryUsage ?? 0,
        ...(m ? { memoryTotal: m.memoryTotal } : {}),
        cpuUsage: m?.cpuUsage ?? 0,
        diskUsage: m?.diskUsage ?? 0,
        networkUsage: m?.networkUsage ?? 0,
        jobsCompleted: this.stats.completed,
        jobsFailed: this.stats.failed,
        averageResponseTime: this.stats.averageResponseTime,
        openContexts: this.pool.openContexts,
      },
      performance: { successRate: this.stats.successRate, averageJobDuration: this.stats.averageJobDuration },
    };
  }

  /** Reads of the server's stamp of its own heartbeat: taken, and skipped or refused. */
  get clockSamples(): { taken: number; skipped: number } {
    return { ...(this.serverTime?.counts ?? { taken: 0, skipped: 0 }) };
  }

  /** When to date an event: the wall clock, or the server's when this machine's is off (ServerTimeSampler). */
  private eventTime(): Date {
    return this.serverTime?.now() ?? new Date();
  }

  /**
   * Before a step: when NATS has acknowledged nothing of this worker's for longer than the master waits before it
   * takes attempts away (link-fence.ts) — now, or for a while since the attempt began or was last confirmed (a pause
   * that ended during the step) — the attempt waits here until a heartbeat sent since is stored, renews its lease (its
   * latest progress, stored before it asks: the leader's answer then reflects it), and asks the leader whether the
   * attempt is still its own (`attempts.check`): yes goes on, no (or a job the leader does not know) stops it as
   * cancelled. Without an answer it waits CONFIRM_SETTLE_MS for the master's cancel, which that heartbeat (it lists
   * the job) brings from a master that gave the attempt away, and goes on. A worker cut off from NATS, or paused, used
   * to run its steps on beside the new attempt: every page twice (a crash attack, 2026-11-30); and the fixed wait
   * alone let a master folding heartbeats slower than it cancel too late (a loaded CI run).
   */
  private async holdWhileCutOff(jobId: string, attempt: number, index: number, signal: AbortSignal, log: Logger, { doubtAfter, leaseMs }: { doubtAfter: number; leaseMs: number }, silence: SilenceWatch, renew: () => Promise<void>, waitForLeader: boolean): Promise<void> {
    if (this.fence.longestSilenceMs(silence) <= doubtAfter && !leaseSilenceHolds(monoNow(), silence, leaseMs)) return;
    // Held again when the link goes silent while it asks: the question or its answer is lost, and going on after the
    // check's window ran the next step beside the attempt the master gave away meanwhile (a CI run's cut mid-check).
    for (;;) {
      const again = await this.holdOnce(jobId, attempt, index, signal, log, { doubtAfter, leaseMs }, silence, renew, waitForLeader);
      if (!again) return;
    }
  }

  /** One hold (holdWhileCutOff); true when the link went silent again while it asked. */
  private async holdOnce(jobId: string, attempt: number, index: number, signal: AbortSignal, log: Logger, { doubtAfter, leaseMs }: { doubtAfter: number; leaseMs: number }, silence: SilenceWatch, renew: () => Promise<void>, waitForLeader: boolean): Promise<boolean> {
    const longest = this.fence.longestSilenceMs(silence);
    this.holds++;
    const heldAt = monoNow();
    if (this.fence.inDoubt(doubtAfter)) {
      log.warn({ step: index + 1, silentMs: Math.round(this.fence.silentMs()) },
        `NATS has acknowledged nothing of this worker's for ${(this.fence.silentMs() / 1000).toFixed(1)} s: the master may have given this attempt to another worker; holding it before step ${index + 1} until the link is back and the master says whether it is still this worker's`);
    } else if (longest <= doubtAfter) {
      this.holdsForLease++;
      const unrenewedMs = heldAt - silence.renewedMs;
      log.warn({ step: index + 1, unrenewedMs: Math.round(unrenewedMs), leaseMs },
        `NATS acknowledged none of this attempt's progress for ${(unrenewedMs / 1000).toFixed(1)} s, and the master gives an attempt away after ${leaseMs / 1000} s without it: holding it before step ${index + 1} until the master says whether it is still this worker's`);
    } else {
      log.warn({ step: index + 1, silentMs: Math.round(longest) },
        `NATS acknowledged nothing of this worker's for ${(longest / 1000).toFixed(1)} s during the last step (the link or this process stalled, and is back): the master may have given this attempt to another worker; holding it before step ${index + 1} until the master says whether it is still this worker's`);
    }
    while (this.heartbeatStoredSentMs < heldAt) {
      this.sendHeartbeat();
      await sleep(HOLD_POLL_MS, signal);
    }
    // Silences from here on are the next hold's: one during the check itself (a second pause) is not forgotten.
    silence.longestEndedMs = 0;
    // The ticks sent while cut off were lost, and the master's lease ran on since the last one it got: renewed and
    // stored first, so that the leader, which reads the log up to its head before it says yes, does not say yes to an
    // attempt whose lease it is about to find lapsed.
    await renew();
    signal.throwIfAborted();
    const answer = await this.checkAttempt(jobId, attempt, signal, log, waitForLeader, doubtAfter);
    if (answer.runs === undefined && answer.silentAgain) return true;
    if (answer.runs === false) {
      this.checks.stopped++;
      log.warn({ step: index + 1, heldMs: Math.round(monoNow() - heldAt) }, `the master says this attempt is no longer this worker's: stopping it (${answer.message})`);
      const reason = new JobAbort("cancelled", `cancelled: ${answer.message}`, false);
      const job = this.running.get(jobId);
      if (job?.attempt === attempt) job.abort(reason);
      signal.throwIfAborted();
      throw reason;
    }
    if (answer.runs === true) {
      this.checks.confirmed++;
      log.info({ step: index + 1, heldMs: Math.round(monoNow() - heldAt) }, "the link is back and the master says the attempt is still this worker's: going on");
      return false;
    }
    this.checks.unanswered++;
    if (answer.noLeader) {
      // No leader for TROUPE_ATTEMPT_CHECK_MS: none could cancel within a wait either (only a leader does), and the next one
      // stops the attempt at this worker's next heartbeat if it was given away. A master older than the check answers
      // so too, and would have cancelled within the wait: workers are upgraded after masters (README, "Upgrade").
      log.warn({ step: index + 1, heldMs: Math.round(monoNow() - heldAt) }, `no master answered whether the attempt is still this worker's for ${this.config.attemptCheckMs / 1000} s (no responders: none leads, or it is older than the check): going on`);
      return false;
    }
    log.warn({ step: index + 1, why: answer.why }, `the master did not say whether the attempt is still this worker's (${answer.why}): waiting ${CONFIRM_SETTLE_MS} ms for its cancel`);
    await sleep(CONFIRM_SETTLE_MS, signal);
    log.info({ step: index + 1, heldMs: Math.round(monoNow() - heldAt) }, "the link is back and the master did not stop the attempt: going on");
    return false;
  }

  /**
   * The leader's answer to `attempts.check`, or why there is none. "No responders" (no master leads: a failover; only
   * for an attempt a current master assigned) and `unavailable` (a leader still reading the log) are asked again every CHECK_RETRY_MS within TROUPE_ATTEMPT_CHECK_MS
   * (30 s: a takeover waits out the 10 s leader lease and reads the log): a
   * soak saw a held attempt go on during a failover, beside the attempt the deposed leader had requeued. Ends early
   * when the attempt is stopped meanwhile.
   */
  private async checkAttempt(jobId: string, attempt: number, signal: AbortSignal, log: Logger, waitForLeader: boolean, doubtAfter: number): Promise<{ runs: true } | { runs: false; message: string } | { runs: undefined; why: string; noLeader?: true; silentAgain?: true }> {
    const body = json({ jobId, attempt, workerId: this.config.workerId } satisfies Command<"attempts.check">);
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => signal.addEventListener("abort", (onAbort = () => reject(signal.reason as Error)), { once: true }));
    aborted.catch(() => {});
    // The link silent again for the fence's window since the question went out: a heartbeat is asked for once it is
    // quiet for half of it (heartbeats may be farther apart than the window), so a working link always shows.
    let askedAt = 0;
    let watch: NodeJS.Timeout | undefined;
    const silentAgain = new Promise<"silent">((resolve) => {
      watch = setInterval(() => {
        if (!askedAt) return;
        const quietMs = monoNow() - Math.max(this.fence.lastSeenMs, askedAt);
        if (quietMs > doubtAfter) resolve("silent");
        else if (quietMs > doubtAfter / 2) this.sendHeartbeat();
      }, HOLD_POLL_MS);
    });
    const deadline = monoNow() + this.config.attemptCheckMs;
    try {
      for (;;) {
        let why: string;
        let noLeader = false;
        try {
          askedAt = monoNow();
          const asked = this.nc.request(this.subjects.rpc("attempts.check"), body, { timeout: Math.max(1, Math.round(deadline - monoNow())) });
          asked.catch(() => {});
          const r = await Promise.race([asked, aborted, silentAgain]);
          if (r === "silent") {
            log.warn({ silentMs: Math.round(this.fence.silentMs()) }, "the link went silent again while the master was asked whether the attempt is still this worker's: holding it again");
            return { runs: undefined, why: "the link went silent again", silentAgain: true };
          }
          const d = decodeReply("ack", r.data);
          if (!d.ok) {
            log.warn({ err: d.error.message }, "invalid answer to an attempt check");
            return { runs: undefined, why: `an invalid answer: ${d.error.message}` };
          }
          if (d.value.ok) return { runs: true };
          // A leader that read the whole log and does not know the job: nothing of it is to run (a purged log).
          if (d.value.error.code === "conflict" || d.value.error.code === "not-found") return { runs: false, message: d.value.error.message };
          why = `${d.value.error.code}: ${d.value.error.message}`;
          if (d.value.error.code !== "unavailable") return { runs: undefined, why };
        } catch (e) {
          signal.throwIfAborted();
          why = (e as Error).message;
          // No answer, and nothing acknowledged since the question went out (the request's time ran out before the
          // silence reached the fence's window: a check window shorter than it, or one mostly spent on retries): the
          // link may be cut again, and going on ran the next step beside the attempt given away (a review).
          // Only a timeout: an error NATS sent at once (a permissions violation under an old nats.conf) proves the link,
          // and holding again on it would ask again for ever.
          if ((e as Error).name === "TimeoutError" && this.fence.lastSeenMs < askedAt) {
            log.warn({ err: why }, "no answer from the master, and nothing acknowledged since it was asked whether the attempt is still this worker's: holding it again");
            return { runs: undefined, why: `${why}; nothing acknowledged since`, silentAgain: true };
          }
          // Asked again only while a leader may come: the attempt's own master serves the check (a failover).
          if (!isNoResponders(e) || !waitForLeader) return { runs: undefined, why };
          noLeader = true;
        }
        if (deadline - monoNow() <= CHECK_RETRY_MS) return { runs: undefined, why, ...(noLeader ? { noLeader: true as const } : {}) };
        await sleep(CHECK_RETRY_MS, signal);
      }
    } finally {
      clearInterval(watch);
      if (onAbort) signal.removeEventListener("abort", onAbort);
    }
  }

  /** Sends the last metrics sample; a slow publish is never stacked behind another. */
  sendHeartbeat(): void {
    if (this.heartbeatInFlight || this.nc.isClosed()) return;
    const sent = monoNow();
    this.heartbeatInFlight = publishEvent(this.js, createEvent("worker.heartbeat", this.heartbeatData(), this.config.workerId, this.eventTime()), { subjects: this.subjects, timeoutMs: Math.min(5000, Math.max(1000, this.config.heartbeatMs)) })
      .then((ack) => {
        // Between acknowledgements as they arrive (a heartbeat sent into a frozen route is acknowledged only after it).
        const ackedAt = monoNow();
        const gapMs = this.heartbeatAckedAtMs === undefined ? 0 : ackedAt - this.heartbeatAckedAtMs;
        this.heartbeatAckedAtMs = ackedAt;
        this.fence.saw(sent);
        this.heartbeatStoredSentMs = Math.max(this.heartbeatStoredSentMs, sent);
        this.serverTime?.afterOwnPublish(ack.seq, sent, ackedAt);
        // Back after a silence no reconnect marked (a pause or a frozen route the connection outlived): another
        // process may have taken this worker id meanwhile, and this one would run on beside it, ignored (an attack).
        if (gapMs > this.config.heartbeatMs + this.fence.doubtAfterMs) {
          this.log.warn({ silentMs: Math.round(gapMs) }, `no heartbeat of this worker was stored for ${(gapMs / 1000).toFixed(1)} s: checking that no other process took worker id ${this.config.workerId} meanwhile`);
          this.checkReplacedAfterSilence();
        }
      }, (e: Error) => this.log.warn({ err: e.message }, "heartbeat not published"))
      .finally(() => (this.heartbeatInFlight = null));
  }

  statusBody(): StatusBody {
    const m = this.metrics.latest;
    return {
      workerId: this.config.workerId,
      name: this.config.name,
      status: this.workerStatus,
      currentJobs: this.running.size,
      totalProcessed: this.stats.total,
      successRate: this.stats.successRate,
      uptime: formatUptime(Date.now() - this.startedAt),
      performance: { cpu: m?.cpuUsage ?? 0, memory: m?.memoryPercent ?? 0, disk: m?.diskUsage ?? 0 },
    };
  }

  /**
   * Stops taking jobs (`worker.draining`), lets running ones finish within the
   * grace period, then fails the rest as retryable. Keeps heartbeating.
   */
  drain(reason: string): Promise<void> {
    this.draining ??= (async () => {
      this.log.info({ reason, running: this.running.size, graceMs: this.config.drainGraceMs }, "draining");
      // A resume (before the grace runs out) ends the wait without failing anything.
      const resumed = new Promise<"resumed">((r) => (this.endDrain = () => r("resumed")));
      // The grace period starts now, not after the announcement (which may take its whole 10 s with NATS away).
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<"grace">((r) => (timer = setTimeout(() => r("grace"), this.config.drainGraceMs)));
      await (this.drainAnnounced = this.publish("worker.draining", { workerId: this.config.workerId, instanceId: this.instanceId, reason: reason.slice(0, 500) }, { deadlineMs: 10_000 })
        .catch((e: Error) => this.log.error({ err: e.message }, "worker.draining not published")));
      this.sendHeartbeat();
      const all = () => Promise.all([...this.running.values()].map((j) => j.done.catch(() => undefined)));
      const first = await Promise.race([all().then(() => "done" as const), grace, resumed]);
      clearTimeout(timer);
      if (first === "grace" && this.running.size > 0) {
        this.log.warn({ jobs: [...this.running.keys()] }, "drain grace period over; failing the remaining jobs as retryable");
        for (const j of this.running.values()) j.abort(new JobAbort("drained", `the worker is ${this.stopping ? "shutting down" : "draining"} (${reason}); the grace period of ${this.config.drainGraceMs} ms ran out`, true));
        await all();
      }
    })();
    return this.draining;
  }

  /** Closes whatever a failed start opened, without announcing anything. */
  async abandon(): Promise<void> {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.metrics.stop();
    await this.service?.stop().catch(() => {});
    await Promise.all([this.status?.close(), this.pool.close()]);
    if (this.nc && !this.nc.isClosed()) await this.nc.close();
  }

  /** Drain, deregister and close everything (SIGTERM/SIGINT). */
  stop(reason = "shutdown"): Promise<void> {
    this.stopping ??= (async () => {
      this.giveUpAtMs = Date.now() + this.config.drainGraceMs + 10_000;
      await this.drain(reason);
      if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
      // The last heartbeat is stored before the deregistration, not a moment after it in its own stream (the master
      // copes either way): waited for briefly, as with NATS away it would take its whole timeout.
      await Promise.race([this.heartbeatInFlight, new Promise((r) => setTimeout(r, 1000).unref())]);
      this.giveUpAtMs = Number.POSITIVE_INFINITY; // the deregistration has its own 10 s
      await this.publish("worker.deregistered", { workerId: this.config.workerId, instanceId: this.instanceId, reason: reason.slice(0, 500) }, { deadlineMs: 10_000 })
        .catch((e: Error) => this.log.error({ err: e.message }, "worker.deregistered not published"));
      await this.service?.stop().catch(() => {});
      this.presenceSub?.unsubscribe();
      this.metrics.stop();
      await Promise.all([this.status?.close(), this.pool.close()]);
      await closeConnection(this.nc, { log: this.log });
      this.log.info("worker stopped");
    })();
    return this.stopping;
  }
}

/** Builds and starts a worker; on a start-up failure everything opened so far is closed. */
export async function startWorker(config: WorkerConfig, o: WorkerOptions): Promise<Worker> {
  const w = new Worker(config, o);
  try {
    await w.start();
  } catch (e) {
    await w.abandon();
    throw e;
  }
  return w;
}

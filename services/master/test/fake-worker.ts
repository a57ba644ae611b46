import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection, Subscription } from "@nats-io/nats-core";
import { ASSIGNED_AGE_HEADER, createEvent, decodeCommand, needsScriptSteps, newId, subjects, type AssignReply, type Command, type EventData, type EventType, type JobError, type TroupeEvent } from "@troupe/events";
import { connectAs, INSTANCE_HEADER, publishEvent } from "@troupe/events/node";

/**
 * A worker test double that speaks the protocol: registers, heartbeats,
 * answers `troupe.worker.<id>.assign`, publishes job events with the worker
 * credentials. What it does with a job is up to the test.
 */

export type Behaviour =
  | { kind: "complete"; afterMs?: number }
  | { kind: "fail"; retryable: boolean; afterMs?: number }
  | { kind: "hang" }
  | { kind: "refuse"; reason?: "full" | "draining" | "cpu" };

export interface FakeWorkerOptions {
  id: string;
  url: string;
  env: Record<string, string>;
  slots?: number;
  browsers?: string[];
  labels?: string[];
  heartbeatMs?: number;
  behaviour?: (job: Command<"worker.assign">) => Behaviour;
  /** Time from accepting to the first job event (a real worker launches a browser first). */
  startDelayMs?: number;
  /** Progress events while hanging, to keep the lease (0 = none). */
  progressEveryMs?: number;
  /** Job events are tried again (same event id, so a repeat that landed is a duplicate) for this long while NATS is away, as the real worker does (default: once). */
  retryPublishForMs?: number;
  /** Called when an assignment is accepted (the bench's stopwatch: BullMQ's is its processor starting). */
  onAccepted?: (jobId: string) => void;
  /** Called once a job.completed append is acknowledged, i.e. stored (BullMQ's bench counts its `completed` events). */
  onCompleted?: (jobId: string) => void;
  /** Awaited before an assignment is answered (a worker slow to answer), with the request as decoded. */
  beforeAnswer?: (job: Command<"worker.assign"> | undefined) => Promise<void>;
  /** While this returns true, cancels are recorded but nothing stops (a worker paused when they came: SIGSTOP, a long GC). */
  ignoreCancels?: () => boolean;
  /** Declare capabilities.attemptTokens and echo tokens (default true, as the real worker); false: a worker older than tokens. */
  tokens?: boolean;
  /** Declare capabilities.scriptSteps (TROUPE_ALLOW_SCRIPT_STEPS). Without it, as the real worker, a job with a page-JavaScript step is refused (invalid). */
  scriptSteps?: boolean;
}

export interface Held {
  jobId: string;
  attempt: number;
  /** The assignment's token, echoed in the attempt's events (as the real worker does). */
  token?: string;
}

const tokenOf = (h: Held) => (h.token !== undefined ? { token: h.token } : {});

export class FakeWorker {
  nc!: NatsConnection;
  js!: JetStreamClient;
  readonly instanceId = newId("i");
  /** Every assignment request received, accepted or not. */
  readonly requests: Command<"worker.assign">[] = [];
  readonly accepted: Command<"worker.assign">[] = [];
  readonly running = new Map<string, Held>();
  readonly cancels: Command<"worker.cancel">[] = [];
  /** The Troupe-Instance header of each assign request ("" when absent). */
  readonly instanceHeaders: string[] = [];
  /** The ASSIGNED_AGE_HEADER of each assignment ("" when absent). */
  readonly assignedAges: string[] = [];
  maxConcurrent = 0;
  /** Publish failures (after stop() they are expected; tests may inspect them). */
  readonly errors: Error[] = [];
  draining = false;
  private subs: Subscription[] = [];
  private timers = new Set<NodeJS.Timeout>();
  private hb?: NodeJS.Timeout;

  constructor(readonly o: FakeWorkerOptions) {}

  get id() {
    return this.o.id;
  }

  async start(): Promise<this> {
    // No async stack trace captured per request/publish, as the real worker connects.
    this.nc = await connectAs({ url: this.o.url, role: "worker", dataDir: "/nonexistent", name: `fake-${this.id}`, env: this.o.env, noAsyncTraces: true });
    this.js = jetstream(this.nc);
    this.subs.push(this.serve("assign", (body) => this.onAssign(body)));
    this.subs.push(this.serve("cancel", (body) => {
      const c = decodeCommand("worker.cancel", body);
      if (!c.ok) return { ok: false, error: { code: "invalid", message: c.error.message } };
      this.cancels.push(c.value);
      if (this.o.ignoreCancels?.()) return { ok: false, error: { code: "unavailable", message: "paused" } };
      // As the real worker: only the attempt it runs (another is not-found, and what it runs goes on).
      if (this.running.get(c.value.jobId)?.attempt !== c.value.attempt) return { ok: false, error: { code: "not-found", message: `attempt ${c.value.attempt} of ${c.value.jobId} does not run here` } };
      this.running.delete(c.value.jobId);
      return { ok: true };
    }));
    this.subs.push(this.serve("drain", () => {
      this.draining = true;
      void this.publish("worker.draining", { workerId: this.id, instanceId: this.instanceId, reason: "drain requested" });
      return { ok: true };
    }));
    // As the real worker: the same process registers again, once the registration is stored it answers.
    this.subs.push(this.serveAsync("resume", async () => {
      this.draining = false;
      await this.register();
      return { ok: true };
    }));
    await this.nc.flush();
    await this.register();
    await this.heartbeat();
    this.hb = setInterval(() => void this.heartbeat().catch((e: Error) => this.errors.push(e)), this.o.heartbeatMs ?? 200);
    return this;
  }

  private register() {
    return this.publish("worker.registered", {
      workerId: this.id, instanceId: this.instanceId, name: `Fake ${this.id}`, type: "fake", ip: "127.0.0.1", port: 0, version: "test",
      capabilities: { maxConcurrentJobs: this.o.slots ?? 1, memory: 1024, cpu: 1, supportedBrowsers: (this.o.browsers ?? ["chromium"]).map((name) => ({ name, version: "1" })), ...(this.o.labels ? { labels: this.o.labels } : {}), ...(this.o.tokens !== false ? { attemptTokens: true } : {}), ...(this.o.scriptSteps ? { scriptSteps: true as const } : {}) },
    });
  }

  private serveAsync(kind: "resume", h: () => Promise<unknown>): Subscription {
    return this.nc.subscribe(subjects.workerCommand(this.id, kind), {
      callback: (e, m) => {
        if (e) this.errors.push(e);
        else h().then((r) => m.respond(JSON.stringify(r)), (e2: Error) => this.errors.push(e2));
      },
    });
  }

  private serve(kind: "assign" | "cancel" | "drain", h: (body: Uint8Array) => unknown): Subscription {
    return this.nc.subscribe(subjects.workerCommand(this.id, kind), {
      callback: (e, m) => {
        if (e) this.errors.push(e);
        else {
          if (kind === "assign") {
            this.instanceHeaders.push(m.headers?.get(INSTANCE_HEADER) ?? "");
            this.assignedAges.push(m.headers?.get(ASSIGNED_AGE_HEADER) ?? "");
          }
          const before = this.requests.length;
          const reply = JSON.stringify(h(m.data));
          if (kind === "assign" && this.o.beforeAnswer) {
            void this.o.beforeAnswer(this.requests.length > before ? this.requests.at(-1) : undefined).then(() => m.respond(reply), (e: Error) => this.errors.push(e));
          } else m.respond(reply);
        }
      },
    });
  }

  private onAssign(body: Uint8Array): AssignReply {
    const c = decodeCommand("worker.assign", body);
    if (!c.ok) return { accepted: false, reason: "invalid", message: c.error.message, field: c.error.path };
    const job = c.value;
    this.requests.push(job);
    if (this.draining) return { accepted: false, reason: "draining" };
    if (!this.o.scriptSteps && needsScriptSteps(job.spec)) return { accepted: false, reason: "invalid", message: "page-JavaScript steps are disabled on this worker (TROUPE_ALLOW_SCRIPT_STEPS)" };
    const b = this.o.behaviour?.(job) ?? { kind: "complete" };
    if (b.kind === "refuse") return { accepted: false, reason: b.reason ?? "full" };
    if (this.running.size >= (this.o.slots ?? 1)) return { accepted: false, reason: "full" };
    const held: Held = { jobId: job.jobId, attempt: job.attempt, ...(job.token !== undefined ? { token: job.token } : {}) };
    this.running.set(job.jobId, held);
    this.maxConcurrent = Math.max(this.maxConcurrent, this.running.size);
    this.accepted.push(job);
    this.o.onAccepted?.(job.jobId);
    this.later(this.o.startDelayMs ?? 30, async () => {
      if (!this.running.has(job.jobId)) return;
      await this.publishJobEvent("job.started", { jobId: job.jobId, workerId: this.id, attempt: job.attempt, ...tokenOf(held) }).catch((e: Error) => {
        // Never started as far as the log knows: the slot is free again (the master requeues the attempt when its lease lapses).
        this.running.delete(job.jobId);
        throw e;
      });
      if (b.kind === "hang") {
        if (this.o.progressEveryMs) this.keepAlive(held);
        return;
      }
      this.later(b.afterMs ?? 20, async () => {
        if (!this.running.has(job.jobId)) return;
        if (b.kind === "complete") await this.complete(job.jobId);
        else await this.fail(job.jobId, { message: "fake failure", code: "step-failed", retryable: b.retryable });
      });
    });
    return { accepted: true };
  }

  private keepAlive(job: Held) {
    this.later(this.o.progressEveryMs as number, async () => {
      if (!this.running.has(job.jobId)) return;
      // Like the real worker (an interval): the next renewal does not wait for this one's ack, nor stop when it fails.
      this.keepAlive(job);
      await this.publishJobEvent("job.progress", { jobId: job.jobId, workerId: this.id, attempt: job.attempt, ...tokenOf(job), progress: 50 });
    });
  }

  private later(ms: number, f: () => Promise<void>) {
    if (ms <= 0) {
      // At once, but after the current turn's replies: no timer per job event, and the event leaves
      // in the same write as the answer it follows.
      queueMicrotask(() => void f().catch((e: Error) => this.errors.push(e)));
      return;
    }
    const t = setTimeout(() => {
      this.timers.delete(t);
      f().catch((e: Error) => this.errors.push(e));
    }, ms);
    this.timers.add(t);
  }

  async complete(jobId: string, attempt = this.running.get(jobId)?.attempt ?? 1) {
    const held = this.running.get(jobId);
    this.running.delete(jobId);
    await this.publishJobEvent("job.completed", {
      jobId, workerId: this.id, attempt, ...(held?.attempt === attempt ? tokenOf(held) : {}),
      result: { success: true, data: {}, dataExtracted: 0, screenshots: [], logs: [] },
      metrics: { totalDuration: 10, responseTime: 5, memoryUsed: 1 },
    });
    this.o.onCompleted?.(jobId);
  }

  async fail(jobId: string, error: JobError, attempt = this.running.get(jobId)?.attempt ?? 1) {
    const held = this.running.get(jobId);
    this.running.delete(jobId);
    await this.publishJobEvent("job.failed", { jobId, workerId: this.id, attempt, ...(held?.attempt === attempt ? tokenOf(held) : {}), error });
  }

  async heartbeat() {
    await this.publish("worker.heartbeat", {
      workerId: this.id, instanceId: this.instanceId, status: this.draining ? "draining" : this.running.size ? "busy" : "online",
      currentJobs: this.running.size, maxConcurrentJobs: this.o.slots ?? 1, jobIds: [...this.running.keys()],
      metrics: { memoryUsage: 100, cpuUsage: 5, diskUsage: 10, networkUsage: 0, jobsCompleted: 0, jobsFailed: 0, averageResponseTime: 0 },
      performance: { successRate: 100, averageJobDuration: 0 },
    });
  }

  async publish<T extends EventType>(type: T, data: EventData<T>) {
    return publishEvent(this.js, createEvent(type, data, this.id) as TroupeEvent);
  }

  private async publishJobEvent<T extends EventType>(type: T, data: EventData<T>) {
    const event = createEvent(type, data, this.id) as TroupeEvent;
    const until = Date.now() + (this.o.retryPublishForMs ?? 0);
    for (;;) {
      try {
        return await publishEvent(this.js, event);
      } catch (e) {
        if (Date.now() >= until || this.nc.isClosed()) throw e;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  /** Stops like a crash: no deregistration, heartbeats just stop. */
  async stop(o: { deregister?: boolean } = {}) {
    if (this.nc.isClosed()) return; // stopped by its test already
    clearInterval(this.hb);
    for (const t of this.timers) clearTimeout(t);
    for (const s of this.subs) s.unsubscribe();
    if (o.deregister) await this.publish("worker.deregistered", { workerId: this.id, instanceId: this.instanceId });
    await this.nc.close();
  }
}

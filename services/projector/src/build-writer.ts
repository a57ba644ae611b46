import { Worker } from "node:worker_threads";
import { subjectsFor, type Subjects } from "@troupe/events";
import { BatchPacker, type PackedBatch } from "./packed.ts";
import type { Skip } from "./writer.ts";

export type { PackedBatch } from "./packed.ts";

/**
 * The main-thread side of the rebuild's writer thread (`build-thread.ts`):
 * validates each message (`decodeEvent`) as it arrives, packs it into a few
 * transferable arrays (`BatchPacker`: one copy of the bodies, no per-message
 * cloning) and posts full batches; the thread parses, folds and writes while this thread reads and
 * validates the next batch. That splits the work about evenly over two cores. At most `maxInFlightBytes`
 * of bodies wait in the thread (enough to keep reading while it starts, ~1 s
 * of loading the contract), so a slow fold slows the read instead of filling
 * memory.
 */

export interface BuildThreadData {
  file: string;
  prefix: string;
  seriesRetentionMs: number;
  /** Reference time of the series window; null: now. */
  clockMs: number | null;
}

export interface BuildFinish {
  type: "finish";
  applied: number;
  skipped: number;
}

export type BuildRequest = { type: "batch"; batch: PackedBatch } | BuildFinish | { type: "abort" };

export type BuildReply =
  | { type: "ready" }
  | { type: "applied"; read: number; bytes: number; applied: number; skipped: Skip[] }
  | { type: "finished"; checkpoints: Record<string, number>; busyMs: number; cpuMs: number | null }
  | { type: "closed" }
  | { type: "error"; message: string };

export class BuildWriter {
  private readonly worker: Worker;
  private inFlight = 0;
  private inFlightBytes = 0;
  private failure: Error | null = null;
  private waiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private final: { resolve: (r: BuildReply) => void; reject: (e: Error) => void } | null = null;
  private exited = false;

  /** `onApplied` runs for every folded batch, in order. */
  private readonly subjects: Subjects;

  /** `entry`: the thread's module (`buildThreadEntry()`, or the tsx-loaded `tsxEntry`). */
  constructor(entry: URL, data: BuildThreadData, private readonly onApplied: (r: Extract<BuildReply, { type: "applied" }>) => void, private readonly maxInFlightBytes = 64 * 1024 * 1024) {
    this.subjects = subjectsFor(data.prefix);
    // A bigger young generation: a batch's events live through the whole batch, and with the default they are promoted and collected as old objects.
    this.worker = new Worker(entry, { workerData: data, resourceLimits: { maxYoungGenerationSizeMb: 96 } });
    this.worker.on("message", (r: BuildReply) => this.onReply(r));
    this.worker.on("error", (e) => this.fail(new Error(`rebuild writer thread: ${e.message}`, { cause: e })));
    this.worker.on("exit", (code) => {
      this.exited = true;
      this.fail(new Error(`rebuild writer thread exited (code ${code})`));
    });
  }

  private onReply(r: BuildReply): void {
    switch (r.type) {
      case "ready":
        return;
      case "applied":
        this.inFlight--;
        this.inFlightBytes -= r.bytes;
        this.onApplied(r);
        this.wake();
        this.onRoom?.();
        return;
      case "error":
        this.fail(new Error(r.message));
        return;
      default:
        this.final?.resolve(r);
        this.final = null;
    }
  }

  private wake(): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w.resolve();
  }

  private fail(e: Error): void {
    if (this.final) {
      this.final.reject(e);
      this.final = null;
    }
    if (this.failure) return;
    this.failure = e;
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w.reject(e);
    // A read holding its flow control for room that will never come goes on, and its next post throws this failure.
    this.onRoom?.();
  }

  /** A packer for batches of `stream` to hand to `apply`; `validate`: decode on this thread (else on the writer thread). */
  packer(stream: string, batchMax: number, validate: boolean): BatchPacker {
    return new BatchPacker(stream, this.subjects, batchMax, validate);
  }

  /** Batches posted to the thread and not folded yet (the one it folds included). */
  get queued(): number {
    return this.inFlight;
  }

  /** At least `maxInFlightBytes` of bodies wait in the thread: the reader should hold off (`onRoom` says when to go on). */
  get full(): boolean {
    return this.failure === null && this.inFlightBytes >= this.maxInFlightBytes;
  }

  /** Called after every folded batch while set (the push read answers its held flow control there). */
  onRoom: (() => void) | null = null;

  /** Hands the packer's batch to the thread at once, however full it is (callers that cannot wait hold off through `full`). */
  post(packer: BatchPacker): void {
    if (this.failure) throw this.failure;
    if (packer.size === 0) return;
    const batch = packer.take();
    // Measured before posting: the transfer detaches the buffer (its length reads 0 afterwards, which made this count nothing and the limit never apply).
    const bytes = batch.data.length;
    this.worker.postMessage({ type: "batch", batch } satisfies BuildRequest, [batch.seqs.buffer, batch.publishedMs.buffer, batch.data.buffer, batch.offsets.buffer] as ArrayBuffer[]);
    this.inFlight++;
    this.inFlightBytes += bytes;
  }

  /** Hands the packer's batch to the thread; waits while `maxInFlightBytes` of bodies are already queued there. */
  async apply(packer: BatchPacker): Promise<void> {
    this.post(packer);
    while (this.full) await this.next();
  }

  /** Resolves once every posted batch is folded. */
  async drain(): Promise<void> {
    while (this.inFlight > 0) await this.next();
    if (this.failure) throw this.failure;
  }

  private next(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private request(req: BuildRequest): Promise<BuildReply> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.final = { resolve, reject };
      this.worker.postMessage(req);
    });
  }

  /** Writes the status row, switches the file to WAL and closes it; returns the checkpoints, the thread's folding time and its CPU time. */
  async finish(applied: number, skipped: number): Promise<{ checkpoints: Record<string, number>; busyMs: number; cpuMs: number | null }> {
    await this.drain();
    const r = await this.request({ type: "finish", applied, skipped });
    await this.terminate();
    const f = r as Extract<BuildReply, { type: "finished" }>;
    return { checkpoints: f.checkpoints, busyMs: f.busyMs, cpuMs: f.cpuMs };
  }

  /** Closes the file without finishing it (the caller deletes it). */
  async abort(): Promise<void> {
    if (!this.failure && !this.exited) await this.request({ type: "abort" }).catch(() => undefined);
    await this.terminate();
  }

  private async terminate(): Promise<void> {
    if (this.exited) return;
    this.failure ??= new Error("rebuild writer closed");
    await this.worker.terminate();
  }
}

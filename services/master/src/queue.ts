import { needsScriptSteps, type JobSpec } from "@troupe/events";

/**
 * The order jobs are offered to workers: priority (higher first), then
 * submission order. A binary heap with lazy removal: callers check that a
 * popped job is still waiting, so a job may be pushed again without a search;
 * `discard` drops a job the caller knows is gone.
 */

export interface QueueEntry {
  jobId: string;
  priority: number;
  /** Stream sequence of the job's submission. */
  order: number;
}

/** Priority first (higher first), then submission order. */
export const byPriority = (a: QueueEntry, b: QueueEntry) => a.priority > b.priority || (a.priority === b.priority && a.order < b.order);

export class JobQueue {
  private heap: QueueEntry[] = [];
  /** The live entry of each job; a heap entry that is not its job's live entry was discarded and is skipped. */
  private live = new Map<string, QueueEntry>();
  private dead = 0;

  /** `before(a, b)`: a leaves the queue before b. */
  constructor(private before: (a: QueueEntry, b: QueueEntry) => boolean = byPriority) {}

  peek(): QueueEntry | undefined {
    this.dropDeadTop();
    return this.heap[0];
  }

  /** Jobs held (discarded ones not counted). */
  get size(): number {
    return this.live.size;
  }

  has(jobId: string): boolean {
    return this.live.has(jobId);
  }

  push(e: QueueEntry): void {
    if (this.live.has(e.jobId)) return;
    this.live.set(e.jobId, e);
    const h = this.heap;
    h.push(e);
    this.up(h.length - 1);
  }

  pop(): QueueEntry | undefined {
    this.dropDeadTop();
    const top = this.popTop();
    if (top) this.live.delete(top.jobId);
    return top;
  }

  /**
   * Lets go of a job (cancelled, expired, gone from the queue's concern) without a search: its entry
   * is skipped when it comes up, and the heap is rebuilt once most of it is such entries, so jobs
   * cancelled long before they were due do not stay in memory until then.
   */
  discard(jobId: string): void {
    if (!this.live.delete(jobId)) return;
    this.dead++;
    if (this.dead > 64 && this.dead > this.live.size) {
      this.heap = [...this.live.values()];
      this.dead = 0;
      for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.down(i);
    }
  }

  /** Entries in the heap, discarded ones included (for tests of the clean-up). */
  get heapSize(): number {
    return this.heap.length;
  }

  private dropDeadTop() {
    for (let top = this.heap[0]; top && this.live.get(top.jobId) !== top; top = this.heap[0]) {
      this.popTop();
      this.dead--;
    }
  }

  private popTop(): QueueEntry | undefined {
    const h = this.heap;
    const top = h[0];
    if (!top) return undefined;
    const last = h.pop() as QueueEntry;
    if (h.length > 0) {
      h[0] = last;
      this.down(0);
    }
    return top;
  }

  private up(i: number) {
    const h = this.heap;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(h[i] as QueueEntry, h[p] as QueueEntry)) break;
      [h[i], h[p]] = [h[p] as QueueEntry, h[i] as QueueEntry];
      i = p;
    }
  }

  private down(i: number) {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.before(h[l] as QueueEntry, h[m] as QueueEntry)) m = l;
      if (r < h.length && this.before(h[r] as QueueEntry, h[m] as QueueEntry)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m] as QueueEntry, h[i] as QueueEntry];
      i = m;
    }
  }
}

/**
 * One priority queue per placement a job asks for (a browser, worker labels; ""
 * = any worker), so jobs nobody can run (a browser or label no online worker
 * has) never starve the others: the dispatcher blocks their queue for the
 * round and keeps taking from the rest.
 */
/** What of a job spec decides which workers may take it. */
export type Placement = Pick<JobSpec, "browser" | "workerLabels" | "scenario">;

export class BrowserQueues {
  private queues = new Map<string, JobQueue>();

  /**
   * One key per placement, unambiguous whatever a browser name or label holds. Page-JavaScript steps are part of it:
   * a script job no live worker may run blocks its placement for the round, and must not block ordinary jobs.
   */
  static key(browser: string | undefined, labels?: readonly string[], scriptSteps = false): string {
    return JSON.stringify([browser?.toLowerCase() ?? "", [...new Set(labels ?? [])].sort(), ...(scriptSteps ? ["script"] : [])]);
  }

  /** The key of a job spec's placement: its browser, its labels, whether it has a page-JavaScript step. */
  static keyOf(spec: Placement): string {
    return BrowserQueues.key(spec.browser, spec.workerLabels, needsScriptSteps(spec));
  }

  get size(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.size;
    return n;
  }

  push(e: QueueEntry, spec: Placement): void {
    const k = BrowserQueues.keyOf(spec);
    let q = this.queues.get(k);
    if (!q) this.queues.set(k, (q = new JobQueue()));
    q.push(e);
  }

  discard(jobId: string, spec: Placement): void {
    const k = BrowserQueues.keyOf(spec);
    const q = this.queues.get(k);
    q?.discard(jobId);
    // Every label set ever asked for would otherwise keep a queue, each looked at on every pop.
    if (q && q.size === 0) this.queues.delete(k);
  }

  /** The best entry (priority, then order) among the queues not blocked, and its queue's key. */
  pop(blocked: ReadonlySet<string> = new Set()): { entry: QueueEntry; key: string } | undefined {
    let best: { q: JobQueue; key: string; head: QueueEntry } | undefined;
    for (const [key, q] of this.queues) {
      if (blocked.has(key)) continue;
      const head = q.peek();
      if (head && (!best || byPriority(head, best.head))) best = { q, key, head };
    }
    if (!best) return undefined;
    best.q.pop();
    if (best.q.size === 0) this.queues.delete(best.key);
    return { entry: best.head, key: best.key };
  }
}

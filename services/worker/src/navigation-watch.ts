/**
 * The page's own document loads still under way, and how many documents it committed, so that a step can wait for
 * the load the step before it began (and the scenario's end for the last one): a click on a link to a dead or refused
 * target completed the job, and an assert after a click read the document on its way out. job.ts feeds it from
 * Puppeteer's page events (main frame only); the scenario reads it.
 */
export class NavigationWatch {
  /** Request → its URL, and whether it failed (it then waits for Chromium's error page). */
  private loading = new Map<unknown, { url: string; failed: boolean; asked?: true }>();
  private waiters = new Set<() => void>();
  /** Documents (or moves within one) the main frame committed so far: a step reads a new one once it is parsed. */
  commits = 0;

  /**
   * The page asked for a document of its own (a link, a form, a script; CDP's Page.frameRequestedNavigation): under
   * way until its request goes out or a document is committed. A form is sent a task after its click, and its
   * request a few milliseconds later, so the request alone showed nothing loading when the scenario ended.
   */
  requested(url: string): void {
    const key = Symbol("asked");
    this.loading.set(key, { url, failed: false, asked: true });
    // One that Chromium drops before any request (an external protocol, a sandbox) is over after a while.
    setTimeout(() => this.forget(key), ASKED_GRACE_MS).unref();
  }

  /** A main-frame document request went out (each redirect hop is a request of its own). */
  started(request: unknown, url: string): void {
    this.dropAsked();
    this.loading.set(request, { url, failed: false });
  }

  /**
   * That request ended: its body arrived, or it failed. A failure other than an abort (a newer navigation, a
   * download) stays under way until Chromium's error page is committed, which is what the check after a step reads.
   */
  ended(request: unknown, failure?: string): void {
    const l = this.loading.get(request);
    if (!l) return;
    if (failure !== undefined && failure !== "net::ERR_ABORTED") l.failed = true;
    else this.forget(request);
  }

  /**
   * The main frame committed a document at `url` (or moved within its document there): the load of that URL is
   * over, and so are failed ones when it is Chromium's error page, and any asked for. Not every load: Puppeteer reports
   * a commit a few ticks late, after a load the new document began at once may already have been seen.
   */
  committed(url: string): void {
    this.commits++;
    const error = url.startsWith("chrome-error://");
    const at = withoutFragment(url);
    this.dropAsked();
    for (const [r, l] of [...this.loading]) if (error ? l.failed : withoutFragment(l.url) === at) this.forget(r);
  }

  /** Asked-for loads are over: their request went out (it is followed instead), or a document came. */
  private dropAsked(): void {
    for (const [r, l] of [...this.loading]) if (l.asked) this.forget(r);
  }

  /** Gives up on every load under way (waited for long enough): later commits are still counted. */
  abandon(): void {
    for (const r of [...this.loading.keys()]) this.forget(r);
  }

  get inFlight(): number {
    return this.loading.size;
  }

  /** The URL of the latest load still under way. */
  get latest(): string | undefined {
    return [...this.loading.values()].at(-1)?.url;
  }

  /** Resolves true once nothing is loading, false after `ms` or when `signal` aborts with loads still under way. */
  settled(ms: number, signal?: AbortSignal): Promise<boolean> {
    if (this.loading.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(t);
        this.waiters.delete(wake);
        signal?.removeEventListener("abort", stop);
        resolve(ok);
      };
      // A microtask later: a redirect ends one hop and starts the next in one go, with nothing loading between.
      const wake = () => queueMicrotask(() => {
        if (this.loading.size === 0) done(true);
      });
      const stop = () => done(false);
      const t = setTimeout(stop, Math.max(0, ms));
      this.waiters.add(wake);
      signal?.addEventListener("abort", stop, { once: true });
    });
  }

  private forget(request: unknown): void {
    if (!this.loading.delete(request)) return;
    for (const w of [...this.waiters]) w();
  }
}

/** How long a load the page asked for may take to send its request. */
const ASKED_GRACE_MS = 3000;

const withoutFragment = (url: string) => {
  const i = url.indexOf("#");
  return i < 0 ? url : url.slice(0, i);
};

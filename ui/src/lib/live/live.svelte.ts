import { wsconnect, type NatsConnection } from "@nats-io/nats-core";
import { decodeEvent, subjectsFor, type JobView, type WorkerView } from "@troupe/events";
import { untrack } from "svelte";
import { navigating } from "$app/state";
import { applyEvent, clockOffset, seedModels, type LiveModels } from "./apply.ts";
import { CATCH_UP_WAIT_MS, dataHolds, readCatchUpAnswer, retryDelayMs, type CatchUpCheck } from "./catch-up.ts";
import { BoundedQueue } from "./queue.ts";
import type { RecentBuckets } from "../recent.ts";

/** What the server hands the page so it can follow NATS (layout load). */
export interface LiveSettings {
  user: string;
  password: string;
  /** Explicit WebSocket URL, else ws(s)://<page host>:<wsPort>. */
  wsUrl?: string;
  wsPort: number;
  prefix: string;
  /** Ping interval (TROUPE_UI_LIVE_PING_MS). */
  pingMs?: number;
}

export type LiveStatus = "connecting" | "live" | "reconnecting" | "offline";

/** Event ids remembered to drop repeats: a worker retries an unacknowledged event for up to 2 minutes, which is
 *  100,000 events at ~800 events/s (about 5 MB). */
const SEEN_KEPT = 100_000;

/** How soon a catch-up that found a navigation under way tries again, if that navigation's own catch-up has not come. */
const NAVIGATING_RETRY_MS = 1000;

/** Above this many queued messages (a hidden tab gets no frames) the view reloads instead of folding them all. */
const MAX_QUEUE = 100_000;
/** … or this many bytes of them (BoundedQueue): events are up to 256 KiB, 100,000 of them gigabytes. */
const MAX_QUEUE_BYTES = 32 * 1024 * 1024;
/**
 * A hidden tab keeps at most this many messages, or bytes of them, to fold when it is shown; past either it lets go
 * of them, takes no more while hidden, and reloads once when shown. With the bounds above, a hidden Overview tab
 * held ~40 MB after ~3 h, reloading in the background each time they were reached (a leak soak, 2026-11-30).
 */
const HIDDEN_QUEUE = 20_000;
const HIDDEN_QUEUE_BYTES = 4 * 1024 * 1024;

/**
 * One page's live copy of the read models: seeded from what the server
 * rendered (SQLite), then folded with the shared reducers. `version` changes
 * at most once per animation frame, which is what the page re-renders on.
 */
export class LiveView {
  version = $state(0);
  models: LiveModels;
  /** Called after each frame that changed something (e.g. the benchmark's DOM probe). */
  onFrame?: (changedWorkers: Set<string>, changedJobs: Set<string>) => void;

  constructor(o: { trackNewJobs?: boolean; trackNewWorkers?: boolean } = {}) {
    this.models = { workers: new Map(), recent: new Map(), jobs: new Map(), trackNewJobs: o.trackNewJobs ?? false, trackNewWorkers: o.trackNewWorkers ?? false };
  }

  /** What the rows were for (the page's filter): rows for the same as before are a catch-up, merged (seedModels). */
  private seededFor: string | undefined;

  /**
   * Seeds the models with server-rendered rows: the first render, every catch-up reload (merged: the rows may be
   * older than what the page folded), and a new filter of the same page (`key` changes: replaced).
   */
  seed(
    workers: readonly WorkerView[] | undefined, jobs: readonly JobView[] | undefined,
    opts: { trackNewJobs?: boolean; summariesOnly?: boolean; key?: string; recent?: ReadonlyMap<string, RecentBuckets> } = {},
  ): void {
    const key = opts.key ?? "";
    const merge = this.seededFor === key;
    // What arrived while the rows were on their way is folded first: folded after, on rows that already hold it,
    // an outcome of a job the page does not hold counted twice (a hidden tab folds only when it is shown; a review).
    // Untracked: the fold reads the connection's counters, which would make this page's seeding effect run again
    // at every frame, merging its old rows over what came live.
    if (merge) untrack(() => live.foldQueued());
    seedModels(this.models, workers, jobs, merge, opts.recent);
    this.seededFor = key;
    if (opts.trackNewJobs !== undefined) this.models.trackNewJobs = opts.trackNewJobs;
    this.models.summariesOnly = opts.summariesOnly === true;
    untrack(() => (this.version += 1));
  }

  /** The page's rows (ids): they go last when the tab holds too many jobs. */
  showing(ids: Iterable<string>): void {
    this.models.onScreen = new Set(ids);
  }

  bump(): void {
    untrack(() => (this.version += 1));
  }
}

/**
 * The browser's single NATS WebSocket connection as the read-only `live` user.
 * Messages are queued as they arrive and decoded + folded once per animation
 * frame into every attached LiveView, so a burst of 1,000 events/s costs one
 * render per frame, not one per event.
 */
class LiveConnection {
  status = $state<LiveStatus>("connecting");
  /** Counters shown in the footer (and read by tests). */
  applied = $state(0);
  /** When this page last applied live events (its own clock). */
  lastAppliedAt = $state(0);
  invalid = $state(0);
  lastError = $state<string | undefined>(undefined);
  /** The WebSocket URL this page connects to (the indicator's tooltip). */
  url = $state<string | undefined>(undefined);
  /**
   * Set while the page may be behind the event log: its last catch-up reloaded before the read models had caught up,
   * or could not check. `stopped`: the check was refused (401: "sign-in", another 4xx: "reload"), so it is not tried
   * again on a timer, only on a reconnect, a navigation, or when the tab is shown again.
   */
  behind = $state<{ reason: string; stopped?: "sign-in" | "reload" } | undefined>(undefined);
  /** Catch-ups that ran to their end (the footer's `data-catch-ups`, read by tests). */
  catchUps = $state(0);
  /** Catch-ups that ended without reloading the page's data: it already held the streams' heads (read by tests). */
  catchUpsWithoutReload = $state(0);

  private views = new Set<LiveView>();
  private queue = new BoundedQueue<{ subject: string; data: Uint8Array; receivedMs: number }>(MAX_QUEUE, MAX_QUEUE_BYTES);
  private scheduled = false;
  private nc: NatsConnection | undefined;
  private starting: Promise<void> | undefined;
  private onCatchUp: (() => unknown) | undefined;
  /** The page's data as shown now: its `readAt` (the projector's checkpoints it was read at), compared by identity. */
  private shownData: (() => unknown) | undefined;
  /** A catch-up's check is under way (a shown tab does not start another). */
  private checking = false;
  /** The hidden tab let go of its queue (HIDDEN_QUEUE): it takes no messages until shown, then reloads. */
  private droppedWhileHidden = false;
  /** Times a hidden tab let go of its queue (the footer's `data-hidden-drops`, read by tests). */
  hiddenDrops = $state(0);
  /** A retry came due while the tab was hidden: it runs when the tab is shown. */
  private retryWhenShown = false;
  /** The latest catch-up: an older one still waiting leaves the reload to it. */
  private catchUpRun = 0;
  /** Catch-ups in a row that did not find the read models caught up (the next check's backoff). */
  private catchUpMisses = 0;
  private catchUpTimer: ReturnType<typeof setTimeout> | undefined;
  /** Aborts the check of the catch-up a newer one superseded. */
  private catchUpAbort: AbortController | undefined;
  /** Ids of the events folded lately: a message JetStream refused as a duplicate (a worker's retry after a lost
   *  ack, the same Nats-Msg-Id) still reaches a plain subscription, and was counted again (a dashboard attack). */
  private seen = new Set<string>();
  /** The same ids in arrival order, a ring: the oldest leaves the set as a new one comes (taking the set's first
   *  value instead cost ~23 µs per event once full, V8 skipping the deleted entries at its front; a review). */
  private seenRing: string[] = [];
  private seenAt = 0;
  private listening = false;

  attach(view: LiveView): () => void {
    this.views.add(view);
    return () => this.views.delete(view);
  }

  /**
   * Connects once per page load; `catchUp` reloads the read model after a reconnect. `readAt` gives the `readAt` of
   * the page's data shown now (a page load's checkpoints), by which a catch-up that finds nothing new reloads nothing.
   */
  start(settings: LiveSettings, catchUp: () => unknown, readAt?: () => unknown): Promise<void> {
    this.onCatchUp = catchUp;
    this.shownData = readAt;
    if (!this.listening) {
      this.listening = true;
      document.addEventListener("visibilitychange", () => this.shown());
      // A window beside the one the user signed in again in is never hidden: coming back to it is a focus.
      window.addEventListener("focus", () => this.shown());
    }
    this.starting ??= this.connect(settings).catch((e) => {
      this.status = "offline";
      this.lastError = (e as Error).message;
      this.starting = undefined;
      // Try again later: the NATS server may be starting.
      setTimeout(() => void this.start(settings, catchUp, readAt), 2000);
    });
    return this.starting;
  }

  private async connect(s: LiveSettings): Promise<void> {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const url = s.wsUrl ?? `${proto}://${location.hostname}:${s.wsPort}`;
    this.url = url;
    this.status = "connecting";
    // A server that hangs (paused, a frozen VM, a dead route) closes nothing: only unanswered pings tell. With nats.js's
    // 2-minute default the page said "live" through a whole hang while every worker turned suspect (an audit); now
    // it says "reconnecting…" after 3 unanswered pings, 45–60 s by default. Not shorter: a pong waits behind the data
    // before it, and 5 s × 2 dropped a slow link's connection in the middle of a burst of events (a review).
    const nc = await wsconnect({ servers: url, user: s.user, pass: s.password, name: "troupe-dashboard", maxReconnectAttempts: -1, reconnectTimeWait: 1000, pingInterval: s.pingMs ?? 15_000, maxPingOut: 3 });
    this.nc = nc;
    const subj = subjectsFor(s.prefix);
    for (const subject of [subj.allEvents, subj.allHeartbeats]) {
      nc.subscribe(subject, {
        callback: (err, m) => {
          if (err) this.lastError = err.message;
          else this.enqueue(m.subject, m.data);
        },
      });
    }
    await nc.flush();
    this.status = "live";
    this.lastError = undefined;
    void this.watch(nc, s);
    // The page was rendered before this subscription existed; what happened in between (a job assigned and
    // finished while the page booted, seen in the e2e suite under load) never reached this page: reload once the
    // read models hold it (catchUp). What is queued when the rows arrive is folded before they are merged in
    // (LiveView.seed).
    void this.catchUp();
  }

  /**
   * Reloads the page's data once SQLite holds everything this subscription did not see: `GET /api/catch-up` reads
   * the streams' heads (after the subscription is live, so what comes later arrives here) and answers when the
   * projector's checkpoints reach them, or after its bound. Reloading at once gave the rows of a projector still
   * behind, and nothing later brought a job's end that had come before the subscription: a job page opened while
   * the projector lagged showed the job running until a manual reload (the e2e suite, 2026-11-30). Past the bound
   * it reloads anyway, says the page may be behind, and checks again with a growing delay (`retryIn`: not while the
   * tab is hidden). A check the dashboard refuses (401, other 4xx) is not tried again on a timer; data that already
   * holds the heads the check read is not loaded again (`dataHolds`).
   */
  private async catchUp(o: { reload?: boolean } = {}): Promise<void> {
    const run = ++this.catchUpRun;
    clearTimeout(this.catchUpTimer);
    this.retryWhenShown = false;
    // The check a newer catch-up supersedes is abandoned: each held one of the browser's six connections to the UI
    // server for up to 5 s, and clicking through pages while the projector lagged left none for the pages' data.
    this.catchUpAbort?.abort();
    const abort = (this.catchUpAbort = new AbortController());
    // The data on screen now, its views following the feed (a page reached by navigation catches up once it is
    // mounted): the heads the check reads come after this moment. A queue that let go of events reloads whatever.
    const shown = o.reload ? undefined : this.shownData?.();
    this.checking = true;
    let check: CatchUpCheck;
    try {
      check = await this.checkReadModels(abort.signal);
    } finally {
      if (run === this.catchUpRun) this.checking = false;
    }
    if (run !== this.catchUpRun) return;
    // A reload while a navigation is under way cancels it (SvelteKit 2 gives both one token): the user's click was
    // dropped and the old page shown again. The navigation's own catch-up follows it; this one tries again shortly
    // in case the navigation does not end (cancelled, or failed).
    if (navigating.to) {
      this.retryIn(NAVIGATING_RETRY_MS);
      return;
    }
    // Data read at checkpoints that reach the heads read after it was shown holds everything stored before this
    // page followed the feed, and the feed brought the rest: reloading it loaded the same page twice on every
    // navigation. The same data still shown (a reload meanwhile may be of data read before the heads were).
    const heads = check.caughtUp || check.retry ? check.heads : undefined;
    const current = shown !== undefined && heads !== undefined && this.shownData?.() === shown && dataHolds(shown, heads);
    // A refused check (401, 403) refuses the page's data the same way: the reload followed the 401's redirect to the
    // login page in this page's place (and checked again from there, refused again, every 1, 2, 4 … 30 s); a 403 is
    // SvelteKit's error page. The page keeps what it has, and its live feed (NATS, its own credentials) goes on.
    const refused = !check.caughtUp && !check.retry && (check.status === 401 || check.status === 403);
    if (!current && !refused) {
      await this.onCatchUp?.();
      if (run !== this.catchUpRun) return;
    } else if (current) this.catchUpsWithoutReload++;
    this.catchUps++;
    if (current || check.caughtUp) {
      this.catchUpMisses = 0;
      this.behind = undefined;
      return;
    }
    if (!check.retry) {
      // No wait mends a refusal: checked again on a reconnect, a navigation, or when the tab is shown again (signed
      // in again in another tab), not on a timer.
      this.behind = { reason: check.reason, stopped: check.stop };
      return;
    }
    this.behind = { reason: check.reason };
    this.retryIn(retryDelayMs(this.catchUpMisses++));
  }

  /**
   * Checks again after `ms`, only while the subscription is live (the reconnect's own catch-up follows a disconnect)
   * and the tab is shown: a hidden tab checked (and reloaded) every 30 s for as long as it stayed open. The check
   * that came due while hidden runs when the tab is shown.
   */
  private retryIn(ms: number): void {
    this.catchUpTimer = setTimeout(() => {
      if (this.status !== "live") return;
      if (document.visibilityState === "hidden") this.retryWhenShown = true;
      else void this.catchUp();
    }, ms);
  }

  /**
   * The tab is shown again (or its window focused): a page whose retry came due while hidden, or whose check was
   * refused, checks once now — the user looks at it, and may have signed in again elsewhere. A retry still waiting
   * its backoff is left to it: every switch back to the tab cost a check and a whole reload while the projector lagged.
   */
  private shown(): void {
    if (document.visibilityState !== "visible") return;
    if (this.droppedWhileHidden) {
      // What it let go of while hidden is in SQLite: one reload. Not live: the reconnect's own catch-up reloads.
      this.droppedWhileHidden = false;
      if (this.status === "live") void this.catchUp({ reload: true });
      return;
    }
    if (this.status !== "live" || this.checking) return;
    if (this.retryWhenShown || this.behind?.stopped) void this.catchUp();
  }

  /**
   * Resolves once the read models hold everything stored so far, or after the check's bounds (the server waits 5 s
   * for the projector, after up to 3 s for NATS to say where the streams end; the request gives up after 15 s): the
   * Submit form waits for it before it goes to the new job's page, which was a "no job" 404 until the projector had
   * folded it.
   */
  async readModelsCaughtUp(): Promise<boolean> {
    return (await this.checkReadModels()).caughtUp;
  }

  /** A page reached by navigation: it catches up as a new one does, once the connection is live (else its catch-up comes with it). */
  navigated(): void {
    if (this.status === "live") void this.catchUp();
  }

  private async checkReadModels(signal?: AbortSignal): Promise<CatchUpCheck> {
    try {
      const timeout = AbortSignal.timeout(CATCH_UP_WAIT_MS + 10_000);
      // AbortSignal.any is newer than the rest (Safari 17.4): without it, a superseded check is only left to end.
      const both = signal && typeof AbortSignal.any === "function" ? AbortSignal.any([signal, timeout]) : timeout;
      const res = await fetch(`/api/catch-up?waitMs=${CATCH_UP_WAIT_MS}`, { signal: both });
      return readCatchUpAnswer(res.status, await res.json().catch(() => undefined));
    } catch (e) {
      return readCatchUpAnswer(0, { error: { message: (e as Error).message } });
    }
  }

  /**
   * Folds what is queued now: a view about to merge rows in. Folded after, on rows that already hold them, the
   * events a hidden tab (no frames) had queued counted each outcome twice (a dashboard attack).
   */
  foldQueued(): void {
    if (this.queue.length) this.flush();
  }

  private async watch(nc: NatsConnection, settings: LiveSettings): Promise<void> {
    for await (const st of nc.status()) {
      // staleConnection: pings went unanswered. The "disconnect" that follows waits for the WebSocket's closing
      // handshake, which a hung server never answers, so the page said "live" until the browser gave up on it.
      if (st.type === "disconnect" || st.type === "staleConnection") this.status = "reconnecting";
      else if (st.type === "reconnecting") this.status = "reconnecting";
      else if (st.type === "reconnect") {
        this.status = "live";
        this.lastError = undefined;
        // Whatever happened while we were away is in SQLite, or will be: reload once it is. The flush makes sure the
        // subscriptions nats.js sent again are in place before the streams' heads are read.
        // Reloaded whatever the heads: the masters' status (the layout's) is in no stream, and a page loaded during a
        // failover said "no master is leading" after the reconnect too (a review).
        void nc.flush().catch(() => undefined).then(() => this.catchUp({ reload: true }));
      } else if (st.type === "error") this.lastError = String(st.error);
    }
    // Closed for good (nats.js gives up when the server refuses the password twice in a row, as after a NATS restart
    // with new credentials): connect again as a first time, every 2 s, so the tooltip's "trying again" holds; the page
    // stayed offline until reloaded (a review).
    this.status = "offline";
    if (this.nc === nc) {
      this.nc = undefined;
      this.starting = undefined;
      setTimeout(() => void this.start(settings, this.onCatchUp ?? (() => undefined), this.shownData), 2000);
    }
  }

  private enqueue(subject: string, data: Uint8Array): void {
    if (this.droppedWhileHidden) {
      // Shown, its visibilitychange not handled yet: catch up now rather than drop what comes.
      if (document.visibilityState === "hidden") return;
      this.shown();
    }
    if (document.visibilityState === "hidden" && (this.queue.length >= HIDDEN_QUEUE || this.queue.byteLength >= HIDDEN_QUEUE_BYTES)) {
      this.queue.take();
      this.droppedWhileHidden = true;
      this.hiddenDrops++;
      return;
    }
    if (!this.queue.push({ subject, data, receivedMs: clock.serverNow() })) {
      void this.catchUp({ reload: true });
      return;
    }
    if (!this.scheduled) {
      this.scheduled = true;
      requestAnimationFrame(() => this.flush());
    }
  }

  private remember(id: string): void {
    const gone = this.seenRing[this.seenAt];
    if (gone !== undefined) this.seen.delete(gone);
    this.seenRing[this.seenAt] = id;
    this.seenAt = (this.seenAt + 1) % SEEN_KEPT;
    this.seen.add(id);
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.queue.take();
    let applied = 0;
    let invalid = 0;
    const changed = new Map<LiveView, { workers: Set<string>; jobs: Set<string> }>();
    for (const { subject, data, receivedMs } of batch) {
      const r = decodeEvent(subject, data);
      if (!r.ok) {
        invalid++;
        console.warn(`troupe live: ignored an invalid message on ${subject}: ${r.error.path || "(body)"}: ${r.error.message}`);
        continue;
      }
      if (this.seen.has(r.value.id)) continue;
      this.remember(r.value.id);
      applied++;
      for (const v of this.views) {
        const a = applyEvent(v.models, r.value, receivedMs);
        if (!a.worker && !a.job) continue;
        let c = changed.get(v);
        if (!c) changed.set(v, (c = { workers: new Set(), jobs: new Set() }));
        if (a.worker) c.workers.add(a.worker);
        if (a.job) c.jobs.add(a.job);
      }
    }
    for (const [v, c] of changed) {
      v.bump();
      v.onFrame?.(c.workers, c.jobs);
    }
    if (applied) {
      this.applied += applied;
      this.lastAppliedAt = Date.now();
    }
    if (invalid) this.invalid += invalid;
  }
}

export const live = new LiveConnection();

/** Below this the browser's clock is taken as right: the gap is mostly the page's own load time. */
const CLOCK_SLACK_MS = 2000;

/**
 * A clock for "last seen 12 s ago" and the suspect colour; ticks every second
 * in the browser, on the server's time: a laptop whose clock is minutes off
 * would otherwise show every worker as long gone (or seen in the future).
 */
class Clock {
  private tick = $state(0);
  private timer: ReturnType<typeof setInterval> | undefined;
  private offsetMs = 0;
  /** The server renders with the request's time; the browser with the ticking one. */
  get now(): number {
    return this.timer ? this.tick : Date.now();
  }
  /** The server's time now, untracked (for stamping received events). */
  serverNow(): number {
    return Date.now() + this.offsetMs;
  }
  /** `serverNowMs`: the server's clock when it rendered the page data, read now. */
  start(serverNowMs?: number): void {
    if (serverNowMs !== undefined) this.offsetMs = clockOffset(serverNowMs, Date.now(), CLOCK_SLACK_MS);
    this.tick = this.serverNow();
    this.timer ??= setInterval(() => (this.tick = this.serverNow()), 1000);
  }
}
export const clock = new Clock();

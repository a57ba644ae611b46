import { existsSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { hostname, tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import puppeteer, { type Browser, type BrowserContext } from "puppeteer-core";
import { pidAlive, type Logger } from "@troupe/events/node";
import { runningTimeout } from "./stall-timer.ts";

/** What a worker's configuration changes in its browsers. */
export interface ChromiumOptions {
  /** Let WebRTC send UDP outside the job's proxy (TROUPE_WEBRTC_UDP). */
  webrtcUdp?: boolean;
}

/** The flags every Troupe browser runs with (the benchmark's bare loop uses the same). */
export function chromiumArgs(userDataDir: string, o: ChromiumOptions = {}): string[] {
  const args = [
    "--headless", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic", `--user-data-dir=${userDataDir}`,
    // Autofill sent every job's form field signatures to content-autofill.googleapis.com through the job's own route
    // (its proxy), a request no real visitor's pages make from there; Puppeteer merges this with its own list.
    "--disable-features=AutofillServerCommunication",
  ];
  // WebRTC's UDP goes round every proxy: a page learned the worker's own public address (STUN to a server of its
  // choice: a job's proxy hid nothing) and sent UDP to any address, past the SSRF guard (127.0.0.1 tested). With this
  // policy WebRTC gathers no candidate but through a proxy (TURN over TCP).
  if (!o.webrtcUdp) args.push("--webrtc-ip-handling-policy=disable_non_proxied_udp");
  // Chromium's sandbox cannot start as root; only then is it turned off.
  if (process.getuid?.() === 0) args.push("--no-sandbox");
  return args;
}

/**
 * Puppeteer's default flags that Troupe leaves out. `--disable-ipc-flooding-protection`: with it, a page flooding
 * history.pushState/replaceState or location.hash changes queued work on the browser process's main thread that
 * took 20–60 s to drain, stalling every job on that browser and its context's close (so the hard timeout ended in
 * killing the browser). Without it, Blink drops a frame's renderer-initiated navigations past 200 per 10 s
 * (page.goto is not counted), and the context closes in milliseconds (measured 2026-11-29, docs/worker.md).
 * `--disable-popup-blocking`: with it, a page opened a window every 100 ms (each on another site, so another
 * renderer): 67 processes and 7.5 GB in a minute, and the job beside it ran 6× slower. Chromium's blocker lets a
 * popup through only for a user gesture (a scenario's click still opens one); the scenario never uses them.
 */
export const CHROMIUM_IGNORED_DEFAULT_ARGS = ["--disable-ipc-flooding-protection", "--disable-popup-blocking"];

/**
 * The settings a fresh profile starts with (its Default/Preferences, which Chromium reads at start and job contexts
 * inherit). Preloading off (`network_prediction_options` 2, Chrome's "Preload pages: off"): a page's speculation
 * rules made Chromium prerender the page a link leads to, and a click activated it as another target: Puppeteer
 * swapped the page's session, so the worker's hold on the page went with it (page.url() stayed on the old page, an
 * `assert url` failed for 30 s, the activated page opened windows past the gesture rule); a link it prefetched
 * made Puppeteer's waitForNavigation time out (a Recorder click that asserted a navigation failed on every
 * attempt). Without it a click is an ordinary navigation. `<link rel=prefetch>` is a plain request and stays.
 */
export const PROFILE_PREFERENCES = { net: { network_prediction_options: 2 } };

/** A profile still there after its browser exited is removed again this often, this many times (then the start-up sweep's). */
const PROFILE_REMOVE_EVERY_MS = 250;
const PROFILE_REMOVE_TRIES = 40;

/** Launches Chromium with a fresh profile directory, removed when the browser closes. */
export async function launchChromium(executablePath: string, o: ChromiumOptions = {}): Promise<Browser> {
  const dir = mkdtempSync(join(tmpdir(), ownProfilePrefix()));
  let browser: Browser;
  try {
    mkdirSync(join(dir, "Default"));
    writeFileSync(join(dir, "Default", "Preferences"), JSON.stringify(PROFILE_PREFERENCES));
    // Over a pipe, Chromium exits when the worker dies, even by SIGKILL (over a WebSocket it would live on, orphaned).
    browser = await puppeteer.launch({ executablePath, headless: true, pipe: true, args: chromiumArgs(dir, o), ignoreDefaultArgs: CHROMIUM_IGNORED_DEFAULT_ARGS, handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`cannot start Chromium at ${executablePath} (set TROUPE_CHROMIUM_PATH): ${(e as Error).message}`, { cause: e });
  }
  const socketDir = singletonSocketDir(dir);
  // The profile is removed once the process has exited (Chromium still writes to it while disconnecting), and with
  // it the directory Chromium made in TMPDIR for its singleton socket: it removes that itself only on a clean close
  // (a SIGTERM left it empty, a kill of a stuck browser with its socket in it, one per browser for ever).
  const removeOnce = (): boolean => {
    let left = false;
    for (const d of socketDir ? [dir, socketDir] : [dir]) {
      try {
        rmSync(d, { recursive: true, force: true, maxRetries: 3 });
      } catch {
        left = true; // a leftover temp dir is not worth failing a job for; tried again below
      }
      if (existsSync(d)) left = true;
    }
    return left;
  };
  // Again a little later when something is left: Chromium's helper processes outlive its main process by a moment
  // after a signal and may still write into the profile (a full run saw it still there after a SIGTERM).
  const removeProfile = () => {
    if (!removeOnce()) return;
    let tries = 0;
    const again = setInterval(() => {
      if (!removeOnce() || ++tries >= PROFILE_REMOVE_TRIES) clearInterval(again);
    }, PROFILE_REMOVE_EVERY_MS);
    again.unref();
  };
  const proc = browser.process();
  if (proc && proc.exitCode === null) proc.once("exit", removeProfile);
  else browser.once("disconnected", removeProfile);
  // Puppeteer's pipe transport drops its own 'error' listeners when it closes; an ECONNRESET on the pipe after
  // that (Chromium exiting while a second close was on its way) was an unhandled 'error' event that killed the worker.
  for (const fd of [3, 4]) {
    const pipe = proc?.stdio[fd] as NodeJS.EventEmitter | null | undefined;
    pipe?.on("error", (e: Error) => {
      pipeErrors.push(e.message);
      if (pipeErrors.length > 20) pipeErrors.shift();
    });
  }
  return browser;
}

/**
 * The directory a running Chromium made for its singleton socket (`<TMPDIR>/org.chromium.Chromium.XXXXXX`, which the
 * profile's `SingletonSocket` links into), or undefined. Only a directory of that name beside the link's socket is
 * taken: the link is Chromium's, but the name keeps a removal to what Chromium itself creates.
 */
export function singletonSocketDir(profileDir: string): string | undefined {
  let target: string;
  try {
    target = readlinkSync(join(profileDir, "SingletonSocket"));
  } catch {
    return undefined;
  }
  const parent = dirname(target);
  return basename(target) === "SingletonSocket" && /^org\.chromium\.Chromium\.[A-Za-z0-9]+$/.test(basename(parent)) ? parent : undefined;
}

/** The last errors seen on browsers' pipes after puppeteer let go of them (harmless; kept for tests and debugging). */
export const pipeErrors: string[] = [];

const PROFILE_PREFIX = "troupe-chromium-";

/** This host, as a profile name can carry it: a short hash (names may hold anything). */
const hostTag = (host = hostname()) => createHash("sha256").update(host).digest("hex").slice(0, 8);

/** `troupe-chromium-<host tag>-<worker pid>-`: whose profile it is, for when its Chromium has removed its lock. */
export const ownProfilePrefix = (pid = process.pid, host = hostname()) => `${PROFILE_PREFIX}${hostTag(host)}-${pid}-`;
/** A profile without Chromium's lock this old is no launch in progress. */
const UNLOCKED_PROFILE_MAX_AGE_MS = 3600_000;

/**
 * Removes the profiles of browsers that died without their worker cleaning up
 * (a worker killed with SIGKILL or by the OOM killer leaves one per browser, in
 * TMPDIR, forever). A profile is named for its worker (ownProfilePrefix): one of
 * this host whose worker pid no longer runs is gone. Older names: Chromium holds
 * `SingletonLock` → `<host>-<pid>` in a live profile, and a lock naming this host
 * and a pid that no longer runs means the browser is gone; a profile without a
 * lock is removed once it is an hour old, with the directory of its singleton socket
 * (singletonSocketDir). Profiles of live browsers — other workers' on this machine too — are left.
 */
export function sweepStaleProfiles(dir = tmpdir(), nowMs = Date.now()): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.startsWith(PROFILE_PREFIX));
  } catch {
    return removed;
  }
  for (const name of names) {
    const path = join(dir, name);
    let stale: boolean;
    // Named for its worker: when that worker is gone, so is its browser. Killed, the worker takes its Chromium with it
    // (the pipe), and Chromium removes its own lock on the way out, so the lock alone left the profile for an hour
    // and, with the sweep at start only, for as long as the next worker ran (a soak: 47 MB after 12 kills).
    const owner = new RegExp(`^${PROFILE_PREFIX}([0-9a-f]{8})-(\\d+)-`).exec(name);
    if (owner && owner[1] === hostTag()) {
      stale = !pidAlive(Number(owner[2]));
    } else try {
      const m = /^(.*)-(\d+)$/.exec(readlinkSync(join(path, "SingletonLock")));
      stale = m !== null && m[1] === hostname() && !pidAlive(Number(m[2]));
    } catch {
      const st = statSync(path, { throwIfNoEntry: false });
      stale = st !== undefined && st.isDirectory() && nowMs - st.mtimeMs > UNLOCKED_PROFILE_MAX_AGE_MS;
    }
    if (!stale) continue;
    try {
      // Its singleton socket's directory first: the link to it goes with the profile.
      const socketDir = singletonSocketDir(path);
      if (socketDir) rmSync(socketDir, { recursive: true, force: true });
      rmSync(path, { recursive: true, force: true });
      removed.push(path);
    } catch {
      // someone else's, or going away already: not ours to insist on
    }
  }
  return removed;
}

/** The browser died under an acquire: the job fails as browser-crashed (retryable), as when it dies during the job. */
export class BrowserGone extends Error {
  readonly code = "browser-crashed";
  readonly retryable = true;
}

/** How long a job's context may take to close before its browser is taken for stuck and killed. */
export const CLOSE_DEADLINE_MS = 5000;
/**
 * A close slower than this (a healthy one takes ~10–50 ms) retires the browser at once: jobs that start while it is
 * waited for get a new browser instead of one that may be killed under them (an attack run saw the next job, assigned
 * after the stuck one had reported, fail as browser-crashed when its browser was killed at the deadline).
 */
export const SLOW_CLOSE_MS = 1000;

interface Slot {
  browser: Browser;
  served: number;
  open: number;
  retiring: boolean;
  crashed: boolean;
  /** The one close of a retired browser: the last two jobs on it may end in the same instant. */
  closing?: Promise<void>;
}

/** A browser context lent to one job. `crashed` resolves if its browser dies under it. */
export interface ContextLease {
  context: BrowserContext;
  crashed: Promise<void>;
  release(): Promise<void>;
}

/**
 * Browsers for the jobs: one active browser hands out a fresh context per job,
 * is retired after `recycleAfter` contexts (closed when its last job ends) and
 * is replaced when it crashes.
 */
export class BrowserPool {
  private active: Slot | null = null;
  private launching: Promise<Slot> | null = null;
  private readonly slots = new Set<Slot>();
  private closed = false;
  /** Browser name and version, known after the first launch. */
  version = "";
  /** Browsers killed as stuck so far (a context that did not close by the deadline). */
  killed = 0;

  constructor(private readonly o: { executablePath: string; recycleAfter: number; log: Logger; closeDeadlineMs?: number; slowCloseMs?: number; chromium?: ChromiumOptions }) {}

  get openContexts(): number {
    let n = 0;
    for (const s of this.slots) n += s.open;
    return n;
  }

  /** The job contexts open on every live browser (tests look into them). */
  contexts(): BrowserContext[] {
    return [...this.slots].filter((s) => s.browser.connected).flatMap((s) => s.browser.browserContexts().filter((c) => c !== s.browser.defaultBrowserContext()));
  }

  /** The live browsers (tests look at what jobs leave on their connections). */
  browsers(): Browser[] {
    return [...this.slots].filter((s) => s.browser.connected).map((s) => s.browser);
  }

  /** Process id of the browser new jobs go to (logs, and the crash test). */
  get activePid(): number | undefined {
    return this.active?.browser.process()?.pid;
  }

  /** Starts the first browser (start-up fails early when Chromium is missing). */
  async start(): Promise<void> {
    const swept = sweepStaleProfiles();
    if (swept.length) this.o.log.info({ removed: swept.length, dir: tmpdir() }, "removed the profiles of browsers that died without cleaning up");
    await this.slot();
  }

  private async launch(): Promise<Slot> {
    const browser = await launchChromium(this.o.executablePath, this.o.chromium);
    this.version = await browser.version();
    const slot: Slot = { browser, served: 0, open: 0, retiring: false, crashed: false };
    this.slots.add(slot);
    browser.once("disconnected", () => {
      this.slots.delete(slot);
      if (this.active === slot) this.active = null;
      if (!slot.retiring && !this.closed) {
        slot.crashed = true;
        this.o.log.error({ openContexts: slot.open }, "browser disconnected unexpectedly; its jobs fail as retryable and a new browser starts for the next job");
      }
    });
    this.o.log.info({ version: this.version, pid: browser.process()?.pid }, "browser started");
    return slot;
  }

  private async slot(): Promise<Slot> {
    if (this.active && !this.active.retiring && this.active.browser.connected) return this.active;
    this.launching ??= this.launch().finally(() => (this.launching = null));
    const s = await this.launching;
    this.active = s;
    return s;
  }

  async acquire(o: { proxyServer?: string; proxyBypassList?: string[] } = {}): Promise<ContextLease> {
    if (this.closed) throw new Error("the browser pool is closed");
    const slot = await this.slot();
    slot.served++;
    slot.open++;
    if (slot.served >= this.o.recycleAfter) {
      // Later jobs get a new browser; this one closes when its last context is released.
      slot.retiring = true;
      this.active = null;
    }
    let context: BrowserContext;
    try {
      context = await slot.browser.createBrowserContext({
        ...(o.proxyServer ? { proxyServer: o.proxyServer } : {}),
        ...(o.proxyBypassList?.length ? { proxyBypassList: o.proxyBypassList } : {}),
      });
    } catch (e) {
      slot.open--;
      await this.closeIfIdle(slot);
      // The browser died (or was killed as stuck) while the context was being made: a crash, like one during the job.
      if (!slot.browser.connected) throw new BrowserGone(`the browser went away while a context was being made: ${(e as Error).message}`);
      throw e;
    }
    let onGone: (() => void) | undefined;
    const crashed = new Promise<void>((res) => {
      if (!slot.browser.connected) return res();
      onGone = () => void (slot.crashed && res());
      // `on`, not `once`: puppeteer's once() wraps the handler, and off() with the handler then removes nothing.
      slot.browser.on("disconnected", onGone);
    });
    let releasing: Promise<void> | null = null;
    return {
      context,
      crashed,
      // Idempotent: every caller waits for the same close.
      release: () => (releasing ??= (async () => {
        // The job is over, and so is its watch for a crash: the handler kept the job's page, context and logs reachable
        // from the browser (through what job.ts chains on `crashed`) until the browser was recycled — ~85 KB a job, so
        // gigabytes with a large TROUPE_RECYCLE_AFTER (a leak soak, 2026-11-30).
        if (onGone) slot.browser.off("disconnected", onGone);
        slot.open--;
        if (slot.browser.connected) {
          const closing = context.close().then(() => true, (e: Error) => {
            this.o.log.debug({ err: e.message }, "context close failed");
            return true;
          });
          // Counted in this process's running time: paused meanwhile, it woke to both timers before reading the close's answer.
          let cancelDeadline: (() => void) | undefined;
          const deadline = new Promise<false>((r) => (cancelDeadline = runningTimeout(this.o.closeDeadlineMs ?? CLOSE_DEADLINE_MS, () => r(false))));
          const cancelSlow = runningTimeout(this.o.slowCloseMs ?? SLOW_CLOSE_MS, () => this.retire(slot, "a job's browser context is slow to close"));
          const closed = await Promise.race([closing, deadline]);
          cancelDeadline?.();
          cancelSlow();
          // A page can keep the browser process too busy to close it (a history.pushState flood did, for minutes,
          // starving every other job on it, until CHROMIUM_IGNORED_DEFAULT_ARGS; a document.title flood or history
          // calls spread over many frames still do): the hard timeout must really stop the page, so the browser goes.
          if (!closed) this.kill(slot, "a job's browser context did not close in time (a page keeps the browser busy)");
        }
        await this.closeIfIdle(slot);
      })()),
    };
  }

  /** New jobs go to a new browser; this one closes when its last context is released (or is killed at the close deadline). */
  private retire(slot: Slot, why: string): void {
    if (slot.retiring || !slot.browser.connected) return;
    this.o.log.warn({ pid: slot.browser.process()?.pid, openContexts: slot.open }, `${why}: later jobs go to a new browser`);
    slot.retiring = true;
    if (this.active === slot) this.active = null;
  }

  /** Kills a browser that does not answer: its jobs fail as retryable (their `crashed` resolves), the next job gets a new browser. */
  private kill(slot: Slot, why: string): void {
    const pid = slot.browser.process()?.pid;
    this.o.log.error({ pid, openContexts: slot.open }, `${why}: killing the browser`);
    this.killed++;
    if (this.active === slot) this.active = null;
    // Its jobs must hear of it even when it was already retiring (a retiring browser's disconnect is no crash otherwise).
    slot.crashed = true;
    const proc = slot.browser.process();
    if (proc && proc.exitCode === null) proc.kill("SIGKILL");
    else void slot.browser.close().catch(() => {});
  }

  private async closeIfIdle(slot: Slot): Promise<void> {
    if (slot.retiring && slot.open === 0 && (slot.closing || slot.browser.connected)) {
      slot.closing ??= (async () => {
        this.o.log.info({ served: slot.served }, "recycling browser");
        await slot.browser.close().catch((e: Error) => this.o.log.warn({ err: e.message }, "browser close failed"));
      })();
      await slot.closing;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.slots].map(async (s) => {
      s.retiring = true;
      s.closing ??= s.browser.close().catch(() => {});
      await s.closing;
      // A close that failed (here or while recycling) must not leave the process behind.
      const proc = s.browser.process();
      if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
    }));
    this.slots.clear();
    this.active = null;
  }
}

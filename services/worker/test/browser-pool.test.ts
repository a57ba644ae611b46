import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "@troupe/events/node";
import { processAlive, waitFor } from "@troupe/tests/harness";
import { afterAll, describe, expect, it } from "vitest";
import { BrowserGone, BrowserPool, launchChromium, ownProfilePrefix, pipeErrors, singletonSocketDir, sweepStaleProfiles } from "../src/browser-pool.ts";

const pool = new BrowserPool({ executablePath: process.env.TROUPE_CHROMIUM_PATH ?? "/usr/bin/chromium", recycleAfter: 2, log: createLogger("pool-test", "warn") });
afterAll(() => pool.close());

describe("BrowserPool", () => {
  it("gives each job a fresh context and recycles the browser after N contexts", async () => {
    await pool.start();
    const first = pool.activePid!;
    const a = await pool.acquire();
    const b = await pool.acquire();
    expect(a.context).not.toBe(b.context);
    expect(pool.openContexts).toBe(2);
    // The retiring browser keeps serving its open contexts; the next job gets a new browser.
    const c = await pool.acquire();
    expect(pool.activePid).not.toBe(first);
    expect(processAlive(first)).toBe(true);
    await a.release();
    await b.release();
    await waitFor("the retired browser to exit", () => !processAlive(first));
    await c.release();
    expect(pool.openContexts).toBe(0);
  });
});

describe("BrowserPool's leases", () => {
  it("leave nothing on the browser once released: each job's crash watch used to stay until the browser was recycled, and kept its page reachable", async () => {
    const many = new BrowserPool({ executablePath: process.env.TROUPE_CHROMIUM_PATH ?? "/usr/bin/chromium", recycleAfter: 50, log: createLogger("pool-test", "warn") });
    try {
      await many.start();
      const first = await many.acquire();
      const browser = first.context.browser();
      const watching = browser.listenerCount("disconnected");
      await first.release();
      const idle = browser.listenerCount("disconnected");
      expect(idle).toBe(watching - 1);
      for (let i = 0; i < 10; i++) {
        const lease = await many.acquire();
        expect(lease.context.browser()).toBe(browser);
        await lease.release();
      }
      expect(browser.listenerCount("disconnected")).toBe(idle);
    } finally {
      await many.close();
    }
  });
});

describe("launchChromium's temporary directories", () => {
  // Chromium removes the directory of its singleton socket (in TMPDIR) only on a clean close: a stuck browser killed,
  // or one stopped by a signal, left one per browser for ever.
  for (const signal of ["SIGKILL", "SIGTERM"] as const) {
    it(`removes the profile and the singleton socket's directory when the browser dies by ${signal}`, async () => {
      const browser = await launchChromium(process.env.TROUPE_CHROMIUM_PATH ?? "/usr/bin/chromium");
      const proc = browser.process()!;
      const profile = /--user-data-dir=(.*)/.exec(proc.spawnargs.find((a) => a.startsWith("--user-data-dir="))!)![1]!;
      const socketDir = singletonSocketDir(profile);
      expect(socketDir).toMatch(/org\.chromium\.Chromium\./);
      expect(existsSync(socketDir!)).toBe(true);
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill(signal);
      await exited;
      // Removed at the exit, or by the retries just after it: Chromium's helper processes can outlive it by a moment
      // and write into the profile (a full run found it still there right after a SIGTERM).
      await waitFor("the profile and the socket's directory removed", () => !existsSync(profile) && !existsSync(socketDir!), 10_000, 50);
    });
  }
});

describe("BrowserPool when the last two jobs on a retiring browser end together", () => {
  it("closes the browser once, and an error on its pipe after puppeteer let go of it is no crash", async () => {
    const lines: string[] = [];
    const log = createLogger("pool-test", "info");
    const info = log.info.bind(log);
    (log as unknown as { info: (...a: unknown[]) => void }).info = (...a: unknown[]) => {
      lines.push(String(a[a.length - 1]));
      info(...(a as Parameters<typeof info>));
    };
    const p = new BrowserPool({ executablePath: process.env.TROUPE_CHROMIUM_PATH ?? "/usr/bin/chromium", recycleAfter: 2, log });
    try {
      await p.start();
      const pid = p.activePid!;
      const pipe = launchedPipe(p);
      const [a, b] = [await p.acquire(), await p.acquire()];
      // A hard timeout or a cancel ending both jobs in the same instant.
      await Promise.all([a.release(), b.release()]);
      expect(lines.filter((l) => l === "recycling browser")).toHaveLength(1);
      await waitFor("the retired browser to exit", () => !processAlive(pid));
      // What Chromium's exit raised on the pipe once puppeteer had removed its listeners: must not be an unhandled 'error'.
      expect(() => pipe?.emit("error", Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }))).not.toThrow();
      expect(pipeErrors).toContain("read ECONNRESET");
    } finally {
      await p.close();
    }
  });
});

/** The pipe puppeteer reads the active browser's messages from (fd 4). */
function launchedPipe(p: BrowserPool): NodeJS.EventEmitter | undefined {
  const active = (p as unknown as { active: { browser: { process(): { stdio: unknown[] } | null } } | null }).active;
  return active?.browser.process()?.stdio[4] as NodeJS.EventEmitter | undefined;
}

describe("BrowserPool with a browser that stops answering", () => {
  // recycleAfter 2: the second job makes the browser a retiring one, whose disconnect is otherwise no crash.
  for (const recycleAfter of [100, 2]) {
    it(`kills the browser when a context does not close in time: its other jobs see a crash, the next job gets a new browser (recycleAfter ${recycleAfter})`, async () => {
      const stuck = new BrowserPool({ executablePath: process.env.TROUPE_CHROMIUM_PATH ?? "/usr/bin/chromium", recycleAfter, log: createLogger("pool-test", "silent"), closeDeadlineMs: 1000 });
      try {
        await stuck.start();
        const pid = stuck.activePid!;
        const hog = await stuck.acquire();
        const other = await stuck.acquire();
        let otherCrashed = false;
        void other.crashed.then(() => (otherCrashed = true));
        // A browser too busy to answer (as a page flooding it made it): it cannot close the context.
        process.kill(pid, "SIGSTOP");
        try {
          await hog.release();
          await waitFor("the stuck browser killed", () => !processAlive(pid));
        } finally {
          try {
            process.kill(pid, "SIGCONT");
          } catch {
            // gone, as it should be
          }
        }
        await waitFor("the other job told its browser crashed", () => otherCrashed);
        await other.release();
        const next = await stuck.acquire();
        expect(stuck.activePid).not.toBe(pid);
        const page = await next.context.newPage();
        expect(await page.evaluate(() => 1 + 1)).toBe(2);
        await next.release();
      } finally {
        await stuck.close();
      }
    });
  }
});

describe("BrowserPool with a context slow to close", () => {
  it("does not kill a healthy browser when the worker itself did not run past the close deadline (paused: on resume its timers fired before the close's answer was read; a soak)", async () => {
    const p = new BrowserPool({ executablePath: process.env.TROUPE_CHROMIUM_PATH ?? "/usr/bin/chromium", recycleAfter: 100, log: createLogger("pool-test", "silent"), closeDeadlineMs: 3000 });
    try {
      await p.start();
      const pid = p.activePid!;
      const lease = await p.acquire();
      const releasing = lease.release();
      // This process stops for 4 s right after asking for the close, as a SIGSTOP'd worker does (the thread blocks).
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 4000);
      await releasing;
      expect(p.killed).toBe(0);
      expect(processAlive(pid)).toBe(true);
    } finally {
      await p.close();
    }
  });


  it("retires the browser at once: a job acquired while the close is waited for gets a new browser, and the old one is closed, not killed, once its close completes", async () => {
    const p = new BrowserPool({ executablePath: process.env.TROUPE_CHROMIUM_PATH ?? "/usr/bin/chromium", recycleAfter: 100, log: createLogger("pool-test", "silent"), slowCloseMs: 200, closeDeadlineMs: 20_000 });
    try {
      await p.start();
      const pid = p.activePid!;
      const slow = await p.acquire();
      // Too busy to close the context for a while (as a flooding page makes it).
      process.kill(pid, "SIGSTOP");
      let released = false;
      const releasing = slow.release().then(() => (released = true));
      try {
        await waitFor("the slow browser retired", () => p.activePid !== pid, 5000);
      } finally {
        process.kill(pid, "SIGCONT");
      }
      expect(released).toBe(false);
      const next = await p.acquire();
      expect(p.activePid).not.toBe(pid);
      expect(p.activePid).toBeDefined();
      const page = await next.context.newPage();
      expect(await page.evaluate(() => 1 + 1)).toBe(2);
      await releasing;
      await waitFor("the retired browser closed", () => !processAlive(pid), 10_000);
      expect(p.killed).toBe(0);
      await next.release();
    } finally {
      await p.close();
    }
  });
});

describe("BrowserPool losing its browser during an acquire", () => {
  it("says the browser went away (a job then fails as browser-crashed, not as a worker error)", async () => {
    const p = new BrowserPool({ executablePath: process.env.TROUPE_CHROMIUM_PATH ?? "/usr/bin/chromium", recycleAfter: 100, log: createLogger("pool-test", "silent") });
    try {
      await p.start();
      const pid = p.activePid!;
      process.kill(pid, "SIGSTOP"); // the context cannot be made while it is stopped …
      const acquiring = p.acquire();
      acquiring.catch(() => {});
      process.kill(pid, "SIGKILL"); // … and then the browser dies
      await expect(acquiring).rejects.toBeInstanceOf(BrowserGone);
      await expect(acquiring).rejects.toMatchObject({ code: "browser-crashed", retryable: true });
    } finally {
      await p.close();
    }
  });
});

describe("sweepStaleProfiles", () => {
  it("removes the profiles of browsers that are gone (named for a worker pid that is gone, a lock naming a dead pid on this host, or no lock for an hour) and leaves live ones", () => {
    const dir = mkdtempSync(join(tmpdir(), "troupe-sweep-"));
    try {
      const dead = Number(spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }).stdout);
      const make = (name: string, lock?: string, ageMs = 0) => {
        const p = join(dir, name);
        mkdirSync(join(p, "Default"), { recursive: true });
        writeFileSync(join(p, "Default", "Preferences"), "{}");
        if (lock) symlinkSync(lock, join(p, "SingletonLock"));
        // Where Chromium put its singleton socket (TMPDIR/org.chromium.Chromium.XXXXXX).
        const socketDir = join(dir, `org.chromium.Chromium.${name.replace(/[^A-Za-z0-9]/g, "")}`);
        mkdirSync(socketDir);
        writeFileSync(join(socketDir, "SingletonSocket"), "");
        symlinkSync(join(socketDir, "SingletonSocket"), join(p, "SingletonSocket"));
        if (ageMs) utimesSync(p, new Date(Date.now() - ageMs), new Date(Date.now() - ageMs));
        return p;
      };
      const deadBrowser = make("troupe-chromium-dead", `${hostname()}-${dead}`);
      const liveBrowser = make("troupe-chromium-live", `${hostname()}-${process.pid}`);
      const otherHost = make("troupe-chromium-otherhost", `not-${hostname()}-${dead}`);
      const unlockedOld = make("troupe-chromium-old", undefined, 2 * 3600_000);
      const unlockedNew = make("troupe-chromium-starting");
      const notOurs = make("something-else", `${hostname()}-${dead}`);
      // Named for a worker: a killed worker's Chromium removes its own lock on the way out (a soak left 47 MB).
      const deadWorker = make(`${ownProfilePrefix(dead)}AbCdEf`);
      const liveWorker = make(`${ownProfilePrefix(process.pid)}AbCdEf`);
      const otherHostsWorker = make(`${ownProfilePrefix(dead, `not-${hostname()}`)}AbCdEf`);
      expect(sweepStaleProfiles(dir).sort()).toEqual([deadBrowser, unlockedOld, deadWorker].sort());
      for (const p of [liveBrowser, otherHost, unlockedNew, notOurs, liveWorker, otherHostsWorker]) expect(existsSync(p), p).toBe(true);
      for (const p of [deadBrowser, unlockedOld, deadWorker]) expect(existsSync(p), p).toBe(false);
      // The removed profiles' socket directories went with them; the others' stay.
      const socketDirs = (ps: string[]) => ps.map((p) => join(dir, `org.chromium.Chromium.${p.slice(dir.length + 1).replace(/[^A-Za-z0-9]/g, "")}`));
      for (const d of socketDirs([deadBrowser, unlockedOld, deadWorker])) expect(existsSync(d), d).toBe(false);
      for (const d of socketDirs([liveBrowser, otherHost, unlockedNew, notOurs, liveWorker, otherHostsWorker])) expect(existsSync(d), d).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

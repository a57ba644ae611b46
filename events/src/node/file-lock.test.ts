import { mkdtempSync, rmSync, utimesSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { withFileLock } from "./file-lock.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "troupe-lock-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("withFileLock", () => {
  it("lets one holder in at a time, and removes the file after", async () => {
    const lock = join(dir, "x.lock");
    const trace: string[] = [];
    let release!: () => void;
    const first = withFileLock(lock, async () => {
      trace.push("first in");
      await new Promise<void>((r) => (release = r));
      trace.push("first out");
    });
    await new Promise((r) => setTimeout(r, 0));
    const second = withFileLock(lock, () => void trace.push("second in"));
    await new Promise((r) => setTimeout(r, 100));
    expect(trace).toEqual(["first in"]);
    release();
    await Promise.all([first, second]);
    expect(trace).toEqual(["first in", "first out", "second in"]);
    expect(existsSync(lock)).toBe(false);
  });

  it("releases the lock when the work throws", async () => {
    const lock = join(dir, "x.lock");
    await expect(withFileLock(lock, () => { throw new Error("boom"); })).rejects.toThrow("boom");
    expect(await withFileLock(lock, () => "again")).toBe("again");
  });

  it("takes over a lock whose holder is gone, and waits for, then names, a live one", async () => {
    const lock = join(dir, "x.lock");
    writeFileSync(lock, "999999999\n"); // no such pid
    const old = new Date(Date.now() - 5000);
    utimesSync(lock, old, old);
    expect(await withFileLock(lock, () => "taken over")).toBe("taken over");
    writeFileSync(lock, `${process.pid}\n`); // held by a live process (this one)
    await expect(withFileLock(lock, () => "never", { timeoutMs: 200, what: "the NATS config" })).rejects.toThrow(new RegExp(`the NATS config is locked by pid ${process.pid}`));
  });
});

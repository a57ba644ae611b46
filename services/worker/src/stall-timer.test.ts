import { describe, expect, it } from "vitest";
import { runningTimeout, STALL_MS } from "./stall-timer.ts";

/** A clock the test moves, counting its reads: one when the timer is armed, one at a firing that may count again. */
function testClock(start = 0) {
  const c = { t: start, reads: 0, now: () => (c.reads++, c.t) };
  return c;
}

describe("runningTimeout", () => {
  it("fires at its first firing when the process ran throughout", async () => {
    const c = testClock();
    await new Promise<void>((r) => runningTimeout(5, r, c.now));
    expect(c.reads).toBe(2);
  });

  it("counts again from a firing that came more than STALL_MS late (the process was stopped meanwhile)", async () => {
    const c = testClock();
    const done = new Promise<void>((r) => runningTimeout(5, r, c.now));
    // The clock as a SIGCONT'd process reads it: past the due time by more than STALL_MS.
    c.t = 5 + STALL_MS + 1;
    await done;
    // Armed, fired late, armed again, fired (no second look: it counts again once).
    expect(c.reads).toBe(3);
  });

  it("counts again once only: a process that keeps stalling still ends the wait", async () => {
    const c = testClock();
    const bump = setInterval(() => (c.t += 10 * STALL_MS), 1);
    await new Promise<void>((r) => runningTimeout(5, r, c.now));
    clearInterval(bump);
    expect(c.reads).toBe(3);
  });

  it("can be cancelled", async () => {
    let fired = false;
    const cancel = runningTimeout(5, () => (fired = true));
    cancel();
    await new Promise<void>((r) => runningTimeout(20, r));
    expect(fired).toBe(false);
  });
});

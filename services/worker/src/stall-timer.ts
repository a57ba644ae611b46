import { monoNow } from "@troupe/events";

/** A timer that fires this much later than due means this process did not run meanwhile (SIGSTOP, a long GC pause). */
export const STALL_MS = 1000;

/**
 * Calls `fn` after `ms` of this process running: a timer that fires more than STALL_MS late counts again from then,
 * once. What it waited for may have been answered while the process was stopped, in a socket it has not read yet (on
 * resume, due timers run before I/O is read): a worker paused during a context's close woke to its 5 s deadline and
 * killed a healthy browser, failing its other jobs as crashed (a soak). Returns a cancel.
 */
export function runningTimeout(ms: number, fn: () => void, now: () => number = monoNow): () => void {
  let timer: NodeJS.Timeout | undefined;
  let rearmed = false;
  const arm = () => {
    const due = now() + ms;
    timer = setTimeout(() => {
      if (!rearmed && now() - due > STALL_MS) {
        rearmed = true;
        arm();
      } else fn();
    }, ms);
  };
  arm();
  return () => clearTimeout(timer);
}

import type { CDPSession, Page } from "puppeteer-core";
import { followTargets, puppeteerSession } from "./page-targets.ts";

/** The CDP calls that run code in a page, for which Puppeteer always asks a user gesture. */
const EVALUATES = new Set(["Runtime.evaluate", "Runtime.callFunctionOn"]);

/** Lets a scenario's own action on the page count as the user's. */
export interface GestureGate {
  /** From now until the returned function is called. */
  begin(): () => void;
}

/**
 * Makes every evaluation Puppeteer sends for the page (its frames and workers too) run without a user gesture,
 * except during `as(action)`. Puppeteer sends `userGesture: true` with each, so each read the worker made (an
 * assert's or a count's check every 100 ms, an extract, a locator's wait) gave the page a transient activation: a
 * page opening windows on a timer got 28 past the popup blocker in 3 s of an assert's polling. A click or keys are
 * real input and a gesture anyway; `select` and `change`, which Puppeteer performs by evaluating, are the user's
 * (`begin`): choosing an option is the user's act in a browser (a page's onchange opening a window was
 * blocked, a review) — their action only, not their wait for the element (a `change` waiting inside `as` gave a
 * page's timer 10 windows, which stalled the step).
 * Wraps the sessions' `send` as proxy-auth.ts does.
 */
export function withoutUserGesture(page: Page): GestureGate {
  let acting = 0;
  const noGesture = (session: CDPSession): void => {
    const s = session as unknown as { send(method: string, params?: Record<string, unknown>, options?: unknown): Promise<unknown> };
    const send = s.send.bind(s);
    s.send = (method, params, options) => send(method, acting === 0 && EVALUATES.has(method) && params?.userGesture ? { ...params, userGesture: false } : params, options);
  };
  const root = puppeteerSession(page);
  noGesture(root);
  followTargets(root, noGesture);
  return {
    begin() {
      acting++;
      let ended = false;
      return () => {
        if (!ended) acting--;
        ended = true;
      };
    },
  };
}

import type { CDPSession, Page } from "puppeteer-core";
import { followTargets, puppeteerSession } from "./page-targets.ts";

/** The CDP calls that run code in a page, for which Puppeteer always asks a user gesture. */
const EVALUATES = new Set(["Runtime.evaluate", "Runtime.callFunctionOn"]);

/**
 * Makes every evaluation Puppeteer sends for the page (its frames and workers too) run without a user gesture.
 * Puppeteer sends `userGesture: true` with each, so each read the worker made (an assert's or a count's check every
 * 100 ms, an extract, a locator's wait) gave the page a transient activation: a page opening windows on a timer got
 * 28 past the popup blocker in 3 s of an assert's polling. What a scenario does to the page (a click, keys) is real
 * input and still a gesture. Wraps the sessions' `send` as proxy-auth.ts does.
 */
export function withoutUserGesture(page: Page): void {
  const root = puppeteerSession(page);
  noGesture(root);
  followTargets(root, noGesture);
}

function noGesture(session: CDPSession): void {
  const s = session as unknown as { send(method: string, params?: Record<string, unknown>, options?: unknown): Promise<unknown> };
  const send = s.send.bind(s);
  s.send = (method, params, options) => send(method, EVALUATES.has(method) && params?.userGesture ? { ...params, userGesture: false } : params, options);
}

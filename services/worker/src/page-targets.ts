import { CDPSessionEvent, type CDPSession, type Page } from "puppeteer-core";

/**
 * The page's own session in Puppeteer (an internal API, pinned with puppeteer-core 24; tests fail if it goes):
 * the frames and workers the page starts attach under it.
 */
export function puppeteerSession(page: Page): CDPSession {
  const p = page as unknown as { _client?: () => CDPSession };
  if (typeof p._client !== "function") throw new Error("puppeteer-core no longer exposes Page._client(): the worker cannot reach the page's frames and workers");
  return p._client();
}

/**
 * Calls `configure` for every target attached under `session`, at any depth (a frame's frames and workers). It runs
 * when the session is announced, before Puppeteer lets the target run: what it sends arrives first.
 */
export function followTargets(session: CDPSession, configure: (s: CDPSession) => void): void {
  session.on(CDPSessionEvent.SessionAttached, (child: CDPSession) => {
    configure(child);
    followTargets(child, configure);
  });
}

/** The CDP id of the page's main frame (Puppeteer's internal `_id`, pinned with puppeteer-core 24); "" if it goes. */
export function mainFrameId(page: Page): string {
  const id = (page.mainFrame() as unknown as { _id?: unknown })._id;
  return typeof id === "string" ? id : "";
}

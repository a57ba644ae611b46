import { CDPSessionEvent, type CDPSession, type Frame, type Page } from "puppeteer-core";

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

/**
 * Calls `configure` for the page of every tab `context` opens after this call (popups: `window.open`, a
 * `target=_blank` link), and for that page's frames and workers. Each is announced before Puppeteer lets it run, so
 * what `configure` sends arrives first. Popups saw the real browser, none of the job's fingerprint (a review).
 * Browser-wide: tabs come on the browser's connection, which every job shares; a tab is told apart by its context.
 * Stops by itself when `page` closes (also when it closed before this call: a job aborted meanwhile); the function
 * returned stops it sooner.
 */
export function followContextPages(page: Page, contextId: string | undefined, configure: (s: CDPSession, topLevel: boolean) => void): () => void {
  const connection = puppeteerSession(page).connection();
  if (!connection) throw new Error("the page's CDP session has no connection: the worker cannot reach the pages it opens");
  const tabs = new Set<string>();
  // Tabs are announced on the connection itself (no session), with their context; the tab's page comes under it next.
  const onTab = (e: { sessionId: string; targetInfo: { type: string; browserContextId?: string } }) => {
    if (e.targetInfo.type === "tab" && e.targetInfo.browserContextId === contextId) tabs.add(e.sessionId);
  };
  const onSession = (s: CDPSession) => {
    const parent = (s as unknown as { parentSession?: () => CDPSession | undefined }).parentSession?.();
    if (!parent || !tabs.has(parent.id())) return;
    configure(s, true);
    followTargets(s, (child) => configure(child, false));
  };
  connection.on("Target.attachedToTarget", onTab);
  connection.on(CDPSessionEvent.SessionAttached, onSession);
  const stop = () => {
    connection.off("Target.attachedToTarget", onTab);
    connection.off(CDPSessionEvent.SessionAttached, onSession);
  };
  page.once("close", stop);
  if (page.isClosed()) stop();
  return stop;
}

/** The CDP id of the page's main frame (Puppeteer's internal `_id`, pinned with puppeteer-core 24); "" if it goes. */
export function mainFrameId(page: Page): string {
  return frameId(page.mainFrame());
}

/** The CDP id of a frame (Puppeteer's internal `_id`, pinned with puppeteer-core 24); "" if it goes. */
export function frameId(frame: Frame): string {
  const id = (frame as unknown as { _id?: unknown })._id;
  return typeof id === "string" ? id : "";
}

/** What a window's JavaScript dialog was: its type and message, and how it was answered. */
export interface WindowDialog {
  type: string;
  message: string;
  accepted: boolean;
}

/**
 * Answers the JavaScript dialogs of every window the job's page opens from now on (`followContextPages`; Puppeteer's
 * `dialog` event answers the page's own): `beforeunload` is accepted, alert, confirm and prompt are dismissed, and
 * `onDialog` says so. Puppeteer makes a new window's Page only once the window's renderer answers it, and an alert()
 * in a same-origin popup holds that renderer (the job page's too: they share it), so a `dialog` handler on that Page
 * came too late. Instead the Page domain is enabled on the window's session as it is announced, before Puppeteer lets
 * the window run. Returns the function that stops it.
 */
export function answerWindowDialogs(page: Page, contextId: string | undefined, onDialog: (d: WindowDialog) => void, onError: (e: Error) => void): () => void {
  return followContextPages(page, contextId, (session, topLevel) => {
    if (!topLevel) return;
    session.on("Page.javascriptDialogOpening", (e) => {
      const accept = e.type === "beforeunload";
      onDialog({ type: e.type, message: e.message, accepted: accept });
      void session.send("Page.handleJavaScriptDialog", { accept }).catch(onError);
    });
    // A session already gone refuses it.
    void session.send("Page.enable").catch(() => {});
  });
}

import type { CDPSession, Page } from "puppeteer-core";
import { followTargets, puppeteerSession } from "./page-targets.ts";

type AuthRequired = { requestId: string; authChallenge: { source?: "Server" | "Proxy" } };
type ContinueWithAuth = { requestId: string; authChallengeResponse: { response: string; username?: string; password?: string } };

/**
 * The job's egress proxy login (page.authenticate) for proxy challenges only. Puppeteer answers every
 * `Fetch.authRequired` with the credentials it was given, a site's own 401 too: any site could ask and get the
 * egress proxy's random login — "troupe-job", a marker of this tool — and a page's 401 became whatever the site
 * answered that login (an attack). A site's challenge now gets `CancelAuth`: the page sees its 401, as in a
 * browser nobody logs in with. Puppeteer answers inside its event handler, so the challenge's source is noted as
 * the event comes in (emit) and the answer changed as it goes out (send), on the page's session and on every
 * frame's and worker's.
 */
export function proxyChallengesOnly(page: Page): void {
  const root = puppeteerSession(page);
  answerProxiesOnly(root);
  followTargets(root, answerProxiesOnly);
}

function answerProxiesOnly(session: CDPSession) {
  const proxyChallenges = new Set<string>();
  const s = session as unknown as { emit(type: unknown, event: unknown): boolean; send(method: string, params?: unknown, options?: unknown): Promise<unknown> };
  const emit = s.emit.bind(s);
  const send = s.send.bind(s);
  s.emit = (type, event) => {
    if (type === "Fetch.authRequired") {
      const e = event as AuthRequired;
      if (e.authChallenge.source === "Proxy") proxyChallenges.add(e.requestId);
    }
    return emit(type, event);
  };
  s.send = (method, params, options) => {
    if (method === "Fetch.continueWithAuth") {
      const p = params as ContinueWithAuth;
      const forProxy = proxyChallenges.delete(p.requestId);
      if (p.authChallengeResponse.response === "ProvideCredentials" && !forProxy) {
        return send(method, { requestId: p.requestId, authChallengeResponse: { response: "CancelAuth" } }, options);
      }
    }
    return send(method, params, options);
  };
}

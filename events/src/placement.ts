import { missingLabels } from "./labels.ts";

/**
 * Which waiting jobs no live worker could ever take (a browser, labels or page-JavaScript steps no worker has): the
 * master skips them silently — they wait for such a worker to join — so the dashboard says so. Pure; the master's own
 * check is `canRun` (services/master/src/scheduler.ts), with the same rules: browser names compared without case,
 * labels exactly, a job with a page-JavaScript step (needsScriptSteps) only on a worker whose registration says scriptSteps.
 */

/** The reason given when no worker is live at all. */
export const NO_LIVE_WORKER = "a live worker";

/** How a reason names page-JavaScript steps (a job's page reads "This job asks for …, which no live worker has"). */
export const SCRIPT_STEPS_NEED = "page-JavaScript steps (TROUPE_ALLOW_SCRIPT_STEPS)";

/** What a group of waiting jobs asks of a worker, and how many jobs ask it. */
export interface QueueNeed {
  browser?: string;
  labels: string[];
  /** The jobs have a step that runs page JavaScript (needsScriptSteps). */
  scriptSteps?: boolean;
  count: number;
}

/** What a live worker offers. */
export interface WorkerOffer {
  browsers: readonly string[];
  labels: readonly string[];
  /** It runs page-JavaScript steps (capabilities.scriptSteps). */
  scriptSteps?: boolean;
}

export function offersBrowser(browsers: readonly string[], browser: string | undefined): boolean {
  return browser === undefined || browsers.some((b) => b.toLowerCase() === browser.toLowerCase());
}

export function offersScriptSteps(w: WorkerOffer, scriptSteps: boolean | undefined): boolean {
  return scriptSteps !== true || w.scriptSteps === true;
}

export function canTake(w: WorkerOffer, need: Pick<QueueNeed, "browser" | "labels" | "scriptSteps">): boolean {
  return offersBrowser(w.browsers, need.browser) && missingLabels(w.labels, need.labels).length === 0 && offersScriptSteps(w, need.scriptSteps);
}

/** "a", "a and b", "a, b and c". */
const inWords = (parts: readonly string[]) => (parts.length < 2 ? parts.join("") : `${parts.slice(0, -1).join(", ")} and ${parts[parts.length - 1]}`);

/** The needs no worker of `workers` meets, each with the reason in words; most jobs first. */
export function unmetNeeds(needs: readonly QueueNeed[], workers: readonly WorkerOffer[]): (QueueNeed & { reason: string })[] {
  const out: (QueueNeed & { reason: string })[] = [];
  for (const n of needs) {
    if (n.count <= 0 || workers.some((w) => canTake(w, n))) continue;
    const browserless = n.browser !== undefined && !workers.some((w) => offersBrowser(w.browsers, n.browser));
    const scriptless = n.scriptSteps === true && !workers.some((w) => offersScriptSteps(w, true));
    const labels = workers.some((w) => offersBrowser(w.browsers, n.browser))
      // The labels that no worker with the browser has; when each has some of them, the whole set is what none has.
      ? n.labels.filter((l) => !workers.some((w) => offersBrowser(w.browsers, n.browser) && w.labels.includes(l)))
      : [];
    if (!workers.length) {
      out.push({ ...n, reason: NO_LIVE_WORKER });
      continue;
    }
    const parts: string[] = [];
    if (browserless) parts.push(`browser "${n.browser}"`);
    if (labels.length) parts.push(`label${labels.length > 1 ? "s" : ""} ${labels.join(", ")}`);
    if (scriptless) parts.push(SCRIPT_STEPS_NEED);
    if (!parts.length) {
      // Each is offered by some worker, none offers them all.
      const all = [
        ...(n.labels.length ? [`label${n.labels.length > 1 ? "s" : ""} ${n.labels.join(", ")}`] : []),
        ...(n.browser !== undefined ? [`browser "${n.browser}"`] : []),
        ...(n.scriptSteps ? [SCRIPT_STEPS_NEED] : []),
      ];
      parts.push(all.length > 1 ? `${all[0]} together with ${inWords(all.slice(1))}` : `${all.join("")} together`);
    }
    out.push({ ...n, reason: inWords(parts) });
  }
  return out.sort((a, b) => b.count - a.count);
}

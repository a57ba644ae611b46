import { missingLabels } from "./labels.ts";

/**
 * Which waiting jobs no live worker could ever take (a browser or labels no worker has): the master skips them
 * silently — they wait for such a worker to join — so the dashboard says so. Pure; the master's own check is
 * `canRun` (services/master/src/scheduler.ts), with the same rules: browser names compared without case, labels exactly.
 */

/** The reason given when no worker is live at all. */
export const NO_LIVE_WORKER = "a live worker";

/** What a group of waiting jobs asks of a worker, and how many jobs ask it. */
export interface QueueNeed {
  browser?: string;
  labels: string[];
  count: number;
}

/** What a live worker offers. */
export interface WorkerOffer {
  browsers: readonly string[];
  labels: readonly string[];
}

export function offersBrowser(browsers: readonly string[], browser: string | undefined): boolean {
  return browser === undefined || browsers.some((b) => b.toLowerCase() === browser.toLowerCase());
}

export function canTake(w: WorkerOffer, need: Pick<QueueNeed, "browser" | "labels">): boolean {
  return offersBrowser(w.browsers, need.browser) && missingLabels(w.labels, need.labels).length === 0;
}

/** The needs no worker of `workers` meets, each with the reason in words; most jobs first. */
export function unmetNeeds(needs: readonly QueueNeed[], workers: readonly WorkerOffer[]): (QueueNeed & { reason: string })[] {
  const out: (QueueNeed & { reason: string })[] = [];
  for (const n of needs) {
    if (n.count <= 0 || workers.some((w) => canTake(w, n))) continue;
    const browserless = n.browser !== undefined && !workers.some((w) => offersBrowser(w.browsers, n.browser));
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
    if (!browserless && !labels.length) parts.push(`labels ${n.labels.join(", ")} together${n.browser ? ` with browser "${n.browser}"` : ""}`);
    out.push({ ...n, reason: parts.join(" and ") });
  }
  return out.sort((a, b) => b.count - a.count);
}

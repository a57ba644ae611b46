import type { SubmitJob } from "@troupe/events";

/**
 * The demo's job mix: fast extractions, slow pages, jobs that fail on a
 * missing element, and jobs with screenshots — so every page has live data.
 * Pure: `pick` takes the random draw, so the mix is testable.
 */
export type DemoKind = "fast" | "slow" | "failing" | "screenshot";
// 4 % failing: each fails twice, so 8 % of the attempts fail. At 15 % (26 % of the attempts) the Overview warned
// that both healthy demo workers were failing (its threshold is 20 %); at 8 % (15 % of the attempts), once it judged
// the last 60 min, a worker's first few dozen attempts crossed 20 % by chance and it was named, minutes after start.
export const DEMO_MIX: readonly [DemoKind, number][] = [["fast", 0.56], ["slow", 0.2], ["failing", 0.04], ["screenshot", 0.2]];

export function pickKind(r: number): DemoKind {
  let acc = 0;
  for (const [k, p] of DEMO_MIX) {
    acc += p;
    if (r < acc) return k;
  }
  return "fast";
}

export function demoJob(kind: DemoKind, site: string, n: number): SubmitJob {
  const url = `${site}/product/${n}`;
  const extract = { type: "extract" as const, fields: { title: { selector: "h1.title" }, price: { selector: ".price" }, stock: { selector: ".stock" }, features: { selector: ".features li", all: true } } };
  const tags = ["demo", kind];
  // The worker opens `url` first, so the scenarios start on the page.
  switch (kind) {
    case "fast":
      return { url, tags, priority: 5, scenario: { title: `fast ${n}`, steps: [extract] } };
    case "slow":
      return {
        url: `${site}/slow?ms=1500`, tags, priority: 3,
        scenario: { title: `slow ${n}`, steps: [
          { type: "wait", ms: 1500 }, { type: "scroll", y: 400 },
          { type: "wait", ms: 1500 }, { type: "extract", fields: { waited: { selector: ".waited" } } },
        ] },
      };
    case "failing":
      // The checkout button never appears: the wait times out, which is retryable, so the demo shows a requeue and then a
      // dead job (an assert fails for good at once: its second attempt was never used).
      return { url, tags, priority: 4, maxAttempts: 2, scenario: { title: `failing ${n}`, timeout: 3000, steps: [{ type: "waitForElement", selectors: [["#checkout"]], timeout: 1500 }] } };
    case "screenshot":
      return { url, tags, priority: 7, scenario: { title: `screenshot ${n}`, steps: [extract, { type: "screenshot", label: "product" }] } };
  }
}

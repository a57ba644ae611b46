import { jobSteps, type JobSpec, type Step, type StepTiming } from "@troupe/events";

/** Cut to `max` characters with an ellipsis: a summary is one line of a table cell. */
const cut = (s: string, max = 80) => (s.length > max ? `${s.slice(0, max - 1)}…` : s);
/** The first alternative of Recorder selectors (a chain through shadow roots / frames joined with ›). */
const firstSelector = (selectors: readonly (string | readonly string[])[]) => {
  const s = selectors[0];
  return s === undefined ? "" : typeof s === "string" ? s : s.join(" › ");
};
/** Typed text may be a password: only its length is shown (the spec itself stays readable through the API). */
const chars = (text: string) => `${text.length} character${text.length === 1 ? "" : "s"}`;

/** What a step does, with its main argument, in one line ("click #login", "type into #user (8 characters)"). Pure. */
export function stepSummary(step: Step): string {
  switch (step.type) {
    case "navigate": return cut(step.url, 120);
    case "click": case "doubleClick": case "hover": case "waitForElement": return cut(firstSelector(step.selectors));
    case "change": return `${cut(firstSelector(step.selectors))} (${chars(step.value)})`;
    case "type": return `into ${cut(step.selector)} (${chars(step.text)})`;
    case "select": return `${cut(step.selector)} = ${cut(step.values.join(", "), 60)}`;
    case "keyDown": case "keyUp": return step.key;
    case "press": return step.selector ? `${step.key} on ${cut(step.selector)}` : step.key;
    case "scroll": return step.selectors ? cut(firstSelector(step.selectors)) : `to ${step.x ?? 0}, ${step.y ?? 0}`;
    case "waitForExpression": return cut(step.expression);
    case "extract": return cut(Object.keys(step.fields).join(", "));
    case "screenshot": return [step.label, step.selector ? cut(step.selector) : step.fullPage ? "full page" : ""].filter(Boolean).join(" · ");
    case "wait": return `${step.ms} ms`;
    case "setViewport": return `${step.width}×${step.height}${step.isMobile ? " mobile" : ""}`;
    case "assert": return cut([step.selector, step.text !== undefined ? `text “${step.text}”` : "", step.url !== undefined ? `URL ∋ ${step.url}` : "", step.title !== undefined ? `title ∋ ${step.title}` : ""].filter(Boolean).join(" · "));
    case "close": return "";
  }
}

export interface StepRow {
  index: number;
  label: string;
  summary: string;
  /** A timing's status, or `pending` / `not run` for a scenario step with no timing (yet). */
  status: StepTiming["status"] | "pending" | "not run";
  durationMs?: number;
  error?: string;
}

/**
 * The job page's step rows: every timing the worker reported (as reported, in its order), then the job's steps it
 * has not reached — `pending` while the job can still run them, `not run` once it has ended. The steps are the ones
 * the worker runs (`jobSteps`: the job's url first, then its scenario), whose indices the timings carry. Each row
 * carries what its step does (stepSummary), so a failed step reads "click #login", not only "click".
 */
export function stepRows(timings: readonly StepTiming[], spec: Pick<JobSpec, "url" | "scenario">, ended: boolean): StepRow[] {
  const steps = jobSteps(spec);
  const summaryOf = (i: number) => {
    const st = steps[i];
    return st ? stepSummary(st) : "";
  };
  const rows: StepRow[] = timings.map((t) => ({
    index: t.index, label: t.name ?? t.type, summary: summaryOf(t.index), status: t.status, durationMs: t.durationMs,
    ...(t.error !== undefined ? { error: t.error } : {}),
  }));
  const reported = new Set(timings.map((t) => t.index));
  steps.forEach((st, i) => {
    if (!reported.has(i)) rows.push({ index: i, label: st.name ?? st.type, summary: stepSummary(st), status: ended ? "not run" : "pending" });
  });
  return rows;
}

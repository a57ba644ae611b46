/** Worker labels as people write them: a comma-separated list (TROUPE_WORKER_LABELS, `troupe submit --labels`). */

export const LABEL_PATTERN = /^[A-Za-z0-9_.:=/-]{1,64}$/;
export const LABELS_MAX = 20;

/** Parses `a, b=c` into ["a", "b=c"] (blanks dropped, duplicates once); throws naming the bad label. */
export function parseLabels(text: string): string[] {
  const out = [...new Set(text.split(",").map((s) => s.trim()).filter(Boolean))];
  const bad = out.find((l) => !LABEL_PATTERN.test(l));
  if (bad !== undefined) throw new Error(`invalid label ${JSON.stringify(bad)}: 1-64 characters of [A-Za-z0-9_.:=/-]`);
  if (out.length > LABELS_MAX) throw new Error(`${out.length} labels: at most ${LABELS_MAX}`);
  return out;
}

/** The labels of `wanted` a worker with `have` lacks (empty: it may run the job). */
export function missingLabels(have: readonly string[] | undefined, wanted: readonly string[] | undefined): string[] {
  return (wanted ?? []).filter((l) => !(have ?? []).includes(l));
}

import { duplicateKeyPath } from "@troupe/events";

/** Turns the Submit form's text fields into a `jobs.submit` body; the server validates it with the contract. */
/** A number field as the page binds it: text, or what Svelte gives an `<input type="number">` (a number, null or undefined when empty). */
export type NumberInput = string | number | null | undefined;

export interface SubmitForm {
  url: string;
  priority: NumberInput;
  tags: string;
  /** Worker labels the job needs, comma-separated (optional in the form). */
  workerLabels?: string;
  maxAttempts: NumberInput;
  timeoutMs: NumberInput;
  scenario: string;
}

type Built = { ok: true; body: Record<string, unknown> } | { ok: false; error: { message: string; field: string } };

function intField(raw: NumberInput, field: string, body: Record<string, unknown>): { message: string; field: string } | null {
  // The page's number inputs bind numbers (a typed "8" is 8, a cleared field null): a string method on them threw and the
  // Submit button did nothing.
  if (raw === null || raw === undefined) return null;
  if (typeof raw === "number" && Number.isNaN(raw)) return null;
  const t = String(raw).trim();
  if (!t) return null;
  if (!/^-?\d+$/.test(t)) return { message: `expected a whole number, got ${JSON.stringify(t)}`, field };
  body[field] = Number(t);
  return null;
}

export function buildSubmit(f: SubmitForm): Built {
  const body: Record<string, unknown> = {};
  if (f.url.trim()) body.url = f.url.trim();
  for (const [raw, field] of [[f.priority, "priority"], [f.maxAttempts, "maxAttempts"], [f.timeoutMs, "timeoutMs"]] as const) {
    const e = intField(raw, field, body);
    if (e) return { ok: false, error: e };
  }
  const tags = f.tags.split(",").map((t) => t.trim()).filter(Boolean);
  if (tags.length) body.tags = tags;
  // Split only; the server names a bad label (workerLabels[i]) with the contract's words.
  const labels = (f.workerLabels ?? "").split(",").map((t) => t.trim()).filter(Boolean);
  if (labels.length) body.workerLabels = labels;
  if (f.scenario.trim()) {
    try {
      body.scenario = JSON.parse(f.scenario);
    } catch (e) {
      return { ok: false, error: { message: `not valid JSON: ${(e as Error).message}`, field: "scenario" } };
    }
    // Checked here, on the pasted text: once parsed and sent again the first of the two is gone, unseen by the server.
    const twice = duplicateKeyPath(f.scenario);
    if (twice !== null) return { ok: false, error: { message: `${twice ? `${twice}: ` : ""}this key appears twice in one object (JSON keeps only the last); give it once`, field: "scenario" } };
  }
  return { ok: true, body };
}

/**
 * Chrome DevTools Recorder selectors → Puppeteer selectors.
 *
 * A Recorder step lists alternatives (tried together, first match wins); each is a
 * string or a chain whose later parts are looked up inside the previous
 * element's shadow root. Puppeteer understands the Recorder prefixes (`aria/`,
 * `xpath/`, `pierce/`, `text/`) on a single selector; inside a chain they become
 * P-selectors (`::-p-aria(...)`) joined by the shadow-root combinator `>>>>`.
 */

export type RecorderSelector = string | string[];

const quote = (s: string) => `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;

/** One selector part as a P-selector usable inside a combinator chain. */
export function toPSelector(part: string): string {
  const m = /^(aria|xpath|text|pierce)\/(.*)$/s.exec(part);
  if (!m) return part;
  const [, kind, rest] = m as unknown as [string, string, string];
  if (kind === "pierce") return `>>> ${rest}`;
  return `::-p-${kind}(${quote(rest)})`;
}

/** One alternative (string or chain) as a single Puppeteer selector string. */
export function toPuppeteerSelector(sel: RecorderSelector): string {
  if (typeof sel === "string") return sel;
  if (sel.length === 1) return sel[0] as string;
  return sel
    .map((part, i) => {
      const p = toPSelector(part);
      if (i === 0) return p.startsWith(">>> ") ? `:root ${p}` : p;
      return p.startsWith(">>> ") ? p : `>>>> ${p}`;
    })
    .join(" ");
}

/** Every alternative of a step, in order. */
export function selectorAlternatives(selectors: readonly RecorderSelector[]): string[] {
  return selectors.map(toPuppeteerSelector);
}

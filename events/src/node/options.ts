/**
 * Declarative options read from CLI flags and `TROUPE_*` environment variables
 * (flag wins, then env, then default). Every value is validated; a bad one is a
 * UsageError naming the flag/variable and the expected form.
 */

/** The largest whole number an option takes unless it says otherwise: 2^31 - 1, the longest delay a Node timer holds. */
export const INT_CEILING = 2_147_483_647;

export class UsageError extends Error {
  override name = "UsageError";
}

interface Base<T> {
  /** Environment variable, e.g. TROUPE_UI_PORT. */
  env?: string;
  help: string;
  default?: T;
  /** Name shown in help for the value, e.g. <ms>. */
  metavar?: string;
  /** Other flags for the same option (`--heartbeat-ms` beside the master's `--heartbeat-interval`, as the worker and `up` name it). */
  aliases?: readonly string[];
}
export type OptionDef =
  | (Base<number> & { kind: "int"; min?: number; max?: number })
  | (Base<string> & { kind: "string"; pattern?: RegExp; patternHelp?: string; choices?: readonly string[] })
  | (Base<boolean> & { kind: "bool" });

type ValueOf<D extends OptionDef> = D extends { kind: "int" } ? number : D extends { kind: "bool" } ? boolean : string;
export type OptionValues<S extends Record<string, OptionDef>> = {
  [K in keyof S]: S[K] extends { default: number | string | boolean } ? ValueOf<S[K]> : ValueOf<S[K]> | undefined;
};

type IntDef = Extract<OptionDef, { kind: "int" }>;
type StrDef = Extract<OptionDef, { kind: "string" }>;
type BoolDef = Extract<OptionDef, { kind: "bool" }>;
// Generic over the extra fields so `default` (when given) is known to be present in the values' type.
export const int = <O extends Omit<IntDef, "kind" | "help"> = {}>(help: string, o?: O): IntDef & O => ({ kind: "int", help, ...(o as O) });
export const str = <O extends Omit<StrDef, "kind" | "help"> = {}>(help: string, o?: O): StrDef & O => ({ kind: "string", help, ...(o as O) });
export const bool = <O extends Omit<BoolDef, "kind" | "help"> = {}>(help: string, o?: O): BoolDef & O => ({ kind: "bool", help, ...(o as O) });

/** camelCase key → --kebab-case flag */
export const flagName = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** An option's flags: its own, then its aliases. */
export const flagsOf = (key: string, d: OptionDef): string[] => [flagName(key), ...(d.aliases ?? [])];

/** What help shows for an option's value after its flag (" <ms>"), or "" for a yes/no flag. */
export const valueHint = (d: OptionDef): string => (d.kind === "bool" ? "" : ` ${d.metavar ?? (d.kind === "int" ? "<n>" : "<value>")}`);

function convert(def: OptionDef, raw: string, where: string): number | string | boolean {
  switch (def.kind) {
    case "int": {
      if (!/^-?\d+$/.test(raw.trim())) throw new UsageError(`${where}: expected a whole number, got ${JSON.stringify(raw)}`);
      const n = Number(raw);
      // Without a maximum of its own, an int is at most what a Node timer takes (~24.8 days in ms): past it,
      // a timer fires after 1 ms (a master with a 1 ms tick), and no count, size or port here comes near.
      const max = def.max ?? INT_CEILING;
      if (def.min !== undefined && n < def.min) throw new UsageError(`${where}: must be at least ${def.min}, got ${n}`);
      if (n > max) throw new UsageError(`${where}: must be at most ${max}, got ${raw.trim().length > 20 ? `${raw.trim().slice(0, 20)}…` : n}`);
      return n;
    }
    case "bool": {
      const v = raw.trim().toLowerCase();
      if (["1", "true", "yes", "on"].includes(v)) return true;
      if (["0", "false", "no", "off", ""].includes(v)) return false;
      throw new UsageError(`${where}: expected true or false, got ${JSON.stringify(raw)}`);
    }
    case "string": {
      if (def.choices && !def.choices.includes(raw)) throw new UsageError(`${where}: expected one of ${def.choices.join(", ")}, got ${JSON.stringify(raw)}`);
      if (def.pattern && !def.pattern.test(raw)) throw new UsageError(`${where}: expected ${def.patternHelp ?? def.pattern.source}, got ${JSON.stringify(raw)}`);
      return raw;
    }
  }
}

export interface Parsed<S extends Record<string, OptionDef>> {
  values: OptionValues<S>;
  positionals: string[];
}

/** Parses argv (flags after the command) and env against the option set. */
export function parseOptions<S extends Record<string, OptionDef>>(
  schema: S,
  argv: readonly string[],
  env: Record<string, string | undefined> = process.env,
  opts: { maxPositionals?: number } = {},
): Parsed<S> {
  const byFlag = new Map(Object.entries(schema).flatMap(([k, d]) => flagsOf(k, d).map((f) => [f, [k, d] as const] as const)));
  const fromFlags: Record<string, unknown> = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--") { positionals.push(...argv.slice(i + 1)); break; }
    if (!arg.startsWith("--")) { positionals.push(arg); continue; }
    const eq = arg.indexOf("=");
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    const neg = flag.startsWith("--no-") ? byFlag.get(`--${flag.slice(5)}`) : undefined;
    const entry = byFlag.get(flag) ?? (neg && neg[1].kind === "bool" ? neg : undefined);
    if (!entry) throw new UsageError(`unknown flag ${flag}${suggest(flag, [...byFlag.keys()])}`);
    const [key, def] = entry;
    // Keeping the last of two values silently ran e.g. a bulk cancel on one status of the two the user named.
    if (key in fromFlags) throw new UsageError(`${flagName(key)} is given more than once; give it once${def.kind === "bool" ? "" : " (it takes one value)"}`);
    if (def.kind === "bool") {
      // `--no-build=false` read as --no-build, its value dropped (a review).
      if (entry === neg && eq >= 0) throw new UsageError(`${flag} takes no value; write ${flag} alone, or --${flag.slice(5)}=<true|false>`);
      if (entry === neg) fromFlags[key] = false;
      else fromFlags[key] = eq >= 0 ? convert(def, arg.slice(eq + 1), flag) : true;
      continue;
    }
    let raw: string | undefined;
    if (eq >= 0) raw = arg.slice(eq + 1);
    else { raw = argv[i + 1]; i++; }
    if (raw === undefined) throw new UsageError(`${flag} needs a value${def.metavar ? ` ${def.metavar}` : ""}`);
    // A flag taken for the value ran `troupe cancel --status queued --reason --dry-run` for real (a review): a value
    // that starts with -- is given as --flag=--value.
    if (eq < 0 && raw.startsWith("--")) throw new UsageError(`${flag} needs a value${def.metavar ? ` ${def.metavar}` : ""}, got the flag ${raw}; a value that starts with -- is written ${flag}=${raw}`);
    fromFlags[key] = convert(def, raw, flag);
  }
  const values: Record<string, unknown> = {};
  for (const [key, def] of Object.entries(schema)) {
    if (key in fromFlags) values[key] = fromFlags[key];
    else if (def.env && env[def.env] !== undefined && env[def.env] !== "") values[key] = convert(def, env[def.env] as string, def.env);
    else values[key] = def.default;
  }
  if (opts.maxPositionals !== undefined && positionals.length > opts.maxPositionals) {
    throw new UsageError(`unexpected argument ${JSON.stringify(positionals[opts.maxPositionals])}`);
  }
  return { values: values as OptionValues<S>, positionals };
}

function suggest(flag: string, known: string[]): string {
  const close = known.find((k) => k.startsWith(flag) || flag.startsWith(k));
  return close ? ` (did you mean ${close}?)` : "";
}

/** Help text for an option set. */
export function formatOptions(schema: Record<string, OptionDef>): string {
  const rows = Object.entries(schema).map(([k, d]) => {
    const left = `  ${flagsOf(k, d).join(", ")}${valueHint(d)}`;
    const def = d.default !== undefined && d.default !== "" ? ` (default ${String(d.default)})` : "";
    const env = d.env ? ` [${d.env}]` : "";
    return [left, `${d.help}${def}${env}`] as const;
  });
  const w = Math.max(...rows.map(([l]) => l.length), 10) + 2;
  return rows.map(([l, r]) => l.padEnd(w) + r).join("\n");
}

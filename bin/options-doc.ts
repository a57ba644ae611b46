import { writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { fileURLToPath } from "node:url";
import { flagsOf, valueHint, type OptionDef } from "@troupe/events/node";
import { COMMANDS } from "./registry.ts";

/** Where the reference lives; `pnpm options-doc` writes it, a test says when it is out of date. */
export const OPTIONS_DOC = fileURLToPath(new URL("../docs/options.md", import.meta.url));

/** This machine's name as a whole word (the worker's default name ends with it). */
const THIS_HOST = new RegExp(`(?<![\\w.-])${hostname().replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);

/** A table cell: one line, no column breaks. */
const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\s*\n\s*/g, " ");

function row(key: string, d: OptionDef): string {
  const flags = flagsOf(key, d).map((f) => `\`${f}${valueHint(d)}\``).join(", ");
  // A default made from this machine (the worker's name) is shown as what it is made of, so the file is the same everywhere.
  const def = d.default === undefined || d.default === "" ? "–" : `\`${String(d.default).replace(THIS_HOST, "<host name>")}\``;
  const limits = d.kind === "int" && (d.min !== undefined || d.max !== undefined) ? ` (${[d.min !== undefined ? `at least ${d.min}` : "", d.max !== undefined ? `at most ${d.max}` : ""].filter(Boolean).join(", ")})` : "";
  const choices = d.kind === "string" && d.choices ? ` (one of ${d.choices.map((c) => `\`${c}\``).join(", ")})` : "";
  return `| ${cell(flags)} | ${d.env ? `\`${d.env}\`` : "–"} | ${cell(def)} | ${cell(`${d.help}${limits}${choices}`)} |`;
}

/** Every `troupe` command's flags, variables and defaults, from the same definitions `--help` prints. */
export async function optionsReference(): Promise<string> {
  const out = [
    "# Every option of every command",
    "",
    "<!-- Generated from the commands' option definitions by `pnpm options-doc`; a test fails when it is out of date. -->",
    "",
    "What `pnpm troupe <command> --help` prints, in one place. A flag wins over its",
    "variable, the variable over the default; every value is checked (a bad one is",
    "a usage error naming it, exit 2). Settings that are variables only (no flag)",
    "are in the README's Configuration table (`TROUPE_LOG_LEVEL`, credentials) and",
    "in each service's doc.",
    "",
  ];
  for (const [name, entry] of Object.entries(COMMANDS)) {
    const c = await entry.load();
    out.push(`## \`troupe ${name}${c.args ? ` ${c.args}` : ""}\``, "", cell(c.summary), "");
    const opts = Object.entries(c.options);
    if (opts.length === 0) {
      out.push("No options.", "");
      continue;
    }
    out.push("| flag | variable | default | meaning |", "|---|---|---|---|", ...opts.map(([k, d]) => row(k, d)), "");
  }
  out.push("## Variables without a flag", "", "| variable | default | meaning |", "|---|---|---|", ...VARIABLES_ONLY.map(([v, d, m]) => `| \`${v}\` | ${d} | ${cell(m)} |`), "");
  return out.join("\n");
}

/** Settings read from the environment only (kept here by hand; the test finds any the code reads that no doc names). */
const VARIABLES_ONLY: readonly (readonly [string, string, string])[] = [
  ["TROUPE_LOG_LEVEL", "`info`", "log level of every service (pino): `trace`, `debug`, `info`, `warn`, `error`, `fatal` or `silent`; any other value (empty too) is a usage error (exit 2) of every command"],
  ["TROUPE_LOG_FORMAT", "`auto`", "how services write their logs: `json` (pino JSON lines), `pretty` (`HH:MM:SS.mmm LEVEL message  key=value`, UTC, an error's stack on the lines after, control characters escaped) or `auto` (pretty when stdout is a terminal, else JSON; `troupe up` formats its children's JSON itself); any other value is a usage error (exit 2) of every command"],
  ["TROUPE_NATS_<ROLE>_USER / _PASSWORD", "from `credentials.env`", "NATS credentials per role (`MASTER`, `WORKER`, `PROJECTOR`, `UI`, `LIVE`); `troupe nats`/`up` generate them on first run"],
  ["TROUPE_NATS_ROUTE_USER / TROUPE_NATS_ROUTE_PASSWORD", "from `credentials.env`", "the user cluster members authenticate each other's routes with"],
  ["TROUPE_SECRETS_KEY", "from `credentials.env`", "seals proxy passwords in the event log; the master and every worker need the same one (docs/security.md)"],
  ["TROUPE_SECRETS_KEYS_PREVIOUS", "from `credentials.env`", "keys rotated out by `troupe rotate-key`, comma-separated: workers still open jobs sealed with them"],
  ["TROUPE_OPENSSL", "`openssl`", "the openssl binary `--tls-self-signed` makes its CA and certificates with"],
  ["TROUPE_DEBUG", "–", "set: the CLI prints the stack of an unexpected error, not only its message"],
  ["TROUPE_REBUILD_VALIDATE", "–", "`reader` or `writer`: which rebuild thread validates events (docs/projector.md; for measurements)"],
];

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(OPTIONS_DOC, await optionsReference());
  console.log(`wrote ${OPTIONS_DOC}`);
}

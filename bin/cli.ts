import { checkLogFormat, checkLogLevel, commandHelp, runCommand, stdoutClosed, UsageError } from "@troupe/events/node";
import { readFileSync } from "node:fs";
import { COMMANDS } from "./registry.ts";

/** `troupe <command> [options]` — dispatches to the command's module. Exit 2 on usage errors. */
function overview(): string {
  const w = Math.max(...Object.keys(COMMANDS).map((n) => n.length)) + 2;
  return [
    "troupe — browser-automation workers, tracked live",
    "",
    "Usage: troupe <command> [options]      (from the repo: pnpm troupe <command>)",
    "",
    "Commands:",
    ...Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(w)}${c.summary}`),
    "",
    "Run `troupe <command> --help` for a command's options; `troupe --version` prints the release.",
  ].join("\n");
}

function closest(name: string): string | undefined {
  const dist = (a: string, b: string) => {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) d[0]![j] = j;
    for (let i = 1; i <= a.length; i++)
      for (let j = 1; j <= b.length; j++)
        d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    return d[a.length]![b.length]!;
  };
  const best = Object.keys(COMMANDS).map((n) => [n, dist(name, n)] as const).sort((a, b) => a[1] - b[1])[0];
  return best && best[1] <= 2 ? best[0] : undefined;
}

/** The command of that name; an inherited property's name (`constructor`) is none (it crashed with a TypeError). */
function commandNamed(name: string) {
  return Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
}

/** The release, from the repository's package.json (a new user's first try, `troupe --version`, was an unknown command). */
function version(): string {
  return (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === "--version" || name === "-V" || name === "version") {
    if (rest.length) {
      console.error(`troupe ${name}: takes no arguments (got ${rest.join(" ")})`);
      return 2;
    }
    console.log(`troupe ${version()}`);
    return 0;
  }
  if (!name || name === "--help" || name === "-h" || name === "help") {
    const target = name === "help" && rest[0] ? commandNamed(rest[0]) : undefined;
    if (target) {
      console.log(commandHelp(await target.load()));
      return 0;
    }
    // `troupe help nosuch` printed the overview and exit 0, as if there were such a command (a review).
    if (name === "help" && rest[0] && !["--help", "-h", "help"].includes(rest[0])) {
      const hint = closest(rest[0]);
      console.error(`troupe: no command "${rest[0]}" to show help for${hint ? ` — did you mean "${hint}"?` : ""}\nRun \`troupe --help\` for the list.`);
      return 2;
    }
    console.log(overview());
    return name ? 0 : 2;
  }
  const entry = commandNamed(name);
  if (!entry) {
    const hint = closest(name);
    console.error(`troupe: unknown command "${name}"${hint ? ` — did you mean "${hint}"?` : ""}\nRun \`troupe --help\` for the list.`);
    return 2;
  }
  const cmd = await entry.load();
  // Output whose reader has gone (`troupe jobs | head`, `troupe up | tee` with Ctrl-C, a hung-up terminal) is dropped
  // instead of crashing the command — `up` in the middle of stopping its children in order.
  void stdoutClosed();
  try {
    // Every service reads it; checked here so each command refuses it alike (exit 2): the master exited 1 and
    // `troupe up` restarted it for ever, the dashboard ignored it. Help is still shown.
    if (!rest.some((a) => a === "--help" || a === "-h")) {
      checkLogLevel(process.env.TROUPE_LOG_LEVEL);
      checkLogFormat(process.env.TROUPE_LOG_FORMAT);
    }
    return await runCommand(cmd, rest);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`troupe ${name}: ${e.message}\nRun \`troupe ${name} --help\` for usage.`);
      return 2;
    }
    console.error(`troupe ${name}: ${(e as Error).message}`);
    if (process.env.TROUPE_DEBUG) console.error(e);
    return 1;
  }
}


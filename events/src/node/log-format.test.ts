import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { formatLogLine } from "./log-format.ts";
import { prettyLogs } from "./logger.ts";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const INDEX = fileURLToPath(new URL("./index.ts", import.meta.url));

describe("formatLogLine", () => {
  it("makes pino JSON lines readable and passes other lines through", () => {
    expect(formatLogLine('{"level":30,"time":1,"pid":2,"hostname":"h","svc":"master","msg":"became leader","epoch":1}')).toBe("INFO became leader  epoch=1");
    expect(formatLogLine('{"level":40,"msg":"slow","ms":{"p99":3}}')).toBe('WARN slow  ms={"p99":3}');
    expect(formatLogLine("plain text")).toBe("plain text");
    expect(formatLogLine("{not json")).toBe("{not json");
  });

  it("leads with the UTC time and puts an error's stack on the lines after, when asked", () => {
    const line = JSON.stringify({ level: 50, time: Date.UTC(2026, 11, 1, 9, 5, 7, 42), svc: "worker", msg: "job failed", jobId: "j-1", err: { type: "Error", message: "boom", stack: "Error: boom\n    at run (a.ts:1:1)" } });
    expect(formatLogLine(line, { time: true, stack: true })).toBe("09:05:07.042 ERROR job failed  jobId=j-1 err=boom\n    Error: boom\n    at run (a.ts:1:1)");
    // One line per entry otherwise (`troupe up` prefixes every line).
    expect(formatLogLine(line)).not.toContain("\n");
  });

  it("escapes control characters: a page's text must not drive the terminal", () => {
    expect(formatLogLine(JSON.stringify({ level: 30, msg: "title \u001b]0;owned\u0007 here" }))).toBe("INFO title \\x1b]0;owned\\x07 here");
    expect(formatLogLine("raw \u001b[2J")).toBe("raw \\x1b[2J");
  });
});

describe("TROUPE_LOG_FORMAT", () => {
  it("is JSON by default off a terminal, lines on one, and what it says when given", () => {
    expect(prettyLogs(undefined, false)).toBe(false);
    expect(prettyLogs(undefined, true)).toBe(true);
    expect(prettyLogs("auto", true)).toBe(true);
    expect(prettyLogs("json", true)).toBe(false);
    expect(prettyLogs("pretty", false)).toBe(true);
    expect(() => prettyLogs("text", false)).toThrow(/TROUPE_LOG_FORMAT: expected one of auto, json, pretty, got "text"/);
  });

  const code = `
    import { createLogger } from ${JSON.stringify(INDEX)};
    const log = createLogger("t");
    log.info({ jobId: "j-1" }, "started");
    log.error({ err: new Error("boom") }, "failed");
  `;
  const run = (env: Record<string, string>, viaTerminal = false) => {
    const argv = [process.execPath, "--import", "tsx", "--input-type=module", "-e", code];
    // util-linux's `script` gives the child a real terminal for stdout.
    const [cmd, args] = viaTerminal ? ["script", ["-qec", argv.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" "), "/dev/null"]] as const : [argv[0]!, argv.slice(1)] as const;
    return spawnSync(cmd, [...args], { encoding: "utf8", timeout: 30_000, cwd: ROOT, env: { ...process.env, ...env } });
  };

  it("a service writes JSON lines to a pipe, and readable lines with the stack when told to or on a terminal", () => {
    const json = run({});
    expect(json.status, json.stderr).toBe(0);
    const first = JSON.parse(json.stdout.split("\n")[0]!) as Record<string, unknown>;
    expect(first).toMatchObject({ level: 30, msg: "started", jobId: "j-1", svc: "t" });

    const pretty = run({ TROUPE_LOG_FORMAT: "pretty" });
    expect(pretty.status, pretty.stderr).toBe(0);
    expect(pretty.stdout).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO started {2}jobId=j-1\n\d\d:\d\d:\d\d\.\d{3} ERROR failed {2}err=boom\n {4}Error: boom\n {4}at /);

    const tty = run({}, true);
    expect(tty.status, tty.stderr).toBe(0);
    expect(tty.stdout.replaceAll("\r", "")).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO started {2}jobId=j-1\n/);
    const forcedJson = run({ TROUPE_LOG_FORMAT: "json" }, true);
    expect(forcedJson.stdout.replaceAll("\r", "").split("\n")[0]).toMatch(/^\{"level":30,/);
  });

  it("lines are dropped, not thrown, once the terminal has gone", () => {
    const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", `
      import { createLogger } from ${JSON.stringify(INDEX)};
      const log = createLogger("t");
      log.info("before");
      process.stdout.emit("error", Object.assign(new Error("write EIO"), { code: "EIO" }));
      log.info("after");
      console.error("still alive");
    `], { encoding: "utf8", timeout: 30_000, cwd: ROOT, env: { ...process.env, TROUPE_LOG_FORMAT: "pretty" } });
    expect(r.stderr).toContain("still alive");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("INFO before");
    expect(r.stdout).not.toContain("after");
  });
});

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ensureCredentials } from "@troupe/events/node";
import { main } from "./cli.ts";
import { COMMANDS } from "./registry.ts";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEvent, encodeEvent, subjectOf, subjects, type EventData, type EventType, type TroupeEvent } from "@troupe/events";
import { newGenerationPath, swapIn } from "../services/projector/src/db-file.ts";
import { openWriterDb, ReadModelWriter, type RawMessage } from "../services/projector/src/writer.ts";
import { formatLine, jsonLine, parseSince } from "./commands/tail-format.ts";

let out: string[];
let err: string[];
beforeEach(() => {
  out = [];
  err = [];
  vi.spyOn(console, "log").mockImplementation((...a) => void out.push(a.join(" ")));
  vi.spyOn(console, "error").mockImplementation((...a) => void err.push(a.join(" ")));
});
afterEach(() => vi.restoreAllMocks());

describe("troupe dispatcher", () => {
  it("lists every command with --help (exit 0) and without arguments (exit 2)", async () => {
    expect(await main(["--help"])).toBe(0);
    for (const name of ["up", "nats", "master", "worker", "projector", "ui", "submit", "workers", "jobs", "tail", "init"]) {
      expect(out.join("\n")).toMatch(new RegExp(`^  ${name} `, "m"));
    }
    expect(await main([])).toBe(2);
  });

  it("`help <command>` shows that command's help; `help` of no such command says so (exit 2), not the overview with exit 0", async () => {
    expect(await main(["help", "tail"])).toBe(0);
    expect(out.join("\n")).toMatch(/^troupe tail\b/);
    expect(await main(["help", "tial"])).toBe(2);
    expect(err.join("\n")).toMatch(/^troupe: no command "tial" to show help for — did you mean "tail"\?/);
    for (const again of ["--help", "-h", "help"]) expect(await main(["help", again]), again).toBe(0);
    // Names of an object's inherited properties are no commands (they crashed with a TypeError, exit 1).
    for (const inherited of ["constructor", "toString"]) {
      expect(await main(["help", inherited]), inherited).toBe(2);
      expect(await main([inherited]), inherited).toBe(2);
    }
  });

  it.each(Object.keys(COMMANDS))("prints help for `%s --help`", async (name) => {
    expect(await main([name, "--help"])).toBe(0);
    expect(out.join("\n")).toMatch(new RegExp(`^troupe ${name}\\b`));
  });

  it("`replay --help` lists only what a rebuild reads (it serves no /metrics and makes no durable consumer)", async () => {
    expect(await main(["replay", "--help"])).toBe(0);
    const help = out.join("\n");
    expect(help).toMatch(/^  --rebuild-batch /m);
    for (const flag of ["--port", "--host", "--batch", "--durable"]) expect(help).not.toMatch(new RegExp(`^  ${flag} `, "m"));
    expect(await main(["replay", "--port", "3003"])).toBe(2);
    expect(err.join("\n")).toMatch(/unknown flag --port/);
  });

  it("refuses a bad TROUPE_LOG_LEVEL in every command with exit 2 (the master exited 1 and `up` restarted it for ever; the dashboard ignored it), and still shows help", async () => {
    vi.stubEnv("TROUPE_LOG_LEVEL", "verbose");
    try {
      for (const name of ["master", "ui", "up", "workers"]) {
        expect(await main([name]), name).toBe(2);
        expect(err.at(-1), name).toBe(`troupe ${name}: TROUPE_LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent, got "verbose"\nRun \`troupe ${name} --help\` for usage.`);
      }
      expect(await main(["master", "--help"])).toBe(0);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it("refuses a bad TROUPE_LOG_FORMAT in every command with exit 2, as it does a bad level", async () => {
    vi.stubEnv("TROUPE_LOG_FORMAT", "text");
    try {
      for (const name of ["master", "worker", "workers"]) {
        expect(await main([name]), name).toBe(2);
        expect(err.at(-1), name).toBe(`troupe ${name}: TROUPE_LOG_FORMAT: expected one of auto, json, pretty, got "text"\nRun \`troupe ${name} --help\` for usage.`);
      }
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it("refuses an unreadable TROUPE_NATS_CA with exit 2 in a command that connects (tail and submit exited 1; ui 2)", async () => {
    vi.stubEnv("TROUPE_NATS_CA", join(mkdtempSync(join(tmpdir(), "troupe-ca-")), "nope.crt"));
    vi.stubEnv("TROUPE_DATA_DIR", mkdtempSync(join(tmpdir(), "troupe-no-data-")));
    try {
      for (const args of [["tail"], ["submit", "--url", "https://example.com"], ["drain", "w1"], ["init"]]) {
        expect(await main(args), `${args[0]}: ${err.join("\n")}`).toBe(2);
        expect(err.join("\n"), args[0]).toMatch(new RegExp(`troupe ${args[0]}: TROUPE_NATS_CA: cannot read .*nope\\.crt`));
      }
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it("prints its release with --version, -V or version (it was an unknown command)", async () => {
    const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    for (const arg of ["--version", "-V", "version"]) expect(await main([arg]), arg).toBe(0);
    expect(out).toEqual(Array(3).fill(`troupe ${version}`));
    expect(await main(["version", "extra"])).toBe(2);
  });

  it("rejects an unknown command with a suggestion and exit 2", async () => {
    expect(await main(["wrker"])).toBe(2);
    expect(err.join("\n")).toMatch(/unknown command "wrker" — did you mean "worker"\?/);
  });

  it("rejects unknown flags and bad values with exit 2", async () => {
    expect(await main(["init", "--replica", "3"])).toBe(2);
    expect(err.join("\n")).toMatch(/unknown flag --replica \(did you mean --replicas\?\)/);
    err.length = 0;
    expect(await main(["init", "--replicas", "seven"])).toBe(2);
    expect(err.join("\n")).toMatch(/--replicas: expected a whole number, got "seven"/);
    err.length = 0;
    expect(await main(["nats", "--port", "70000"])).toBe(2);
    expect(err.join("\n")).toMatch(/--port: must be at most 65535/);
    err.length = 0;
    expect(await main(["tail", "a", "b"])).toBe(2);
    expect(err.join("\n")).toMatch(/unexpected argument "b"/);
    err.length = 0;
    expect(await main(["tail", "--since", "last tuesday"])).toBe(2);
    expect(err.join("\n")).toMatch(/--since: expected a sequence number/);
    // Subjects nats-server would take and then deliver nothing for.
    for (const [subject, why] of [["troupe.evt.>.x", /> matches the rest of the subject/], ["troupe..evt", /a token is empty/], ["troupe.evt.job*", /a wildcard is a whole token/]] as const) {
      err.length = 0;
      expect(await main(["tail", subject])).toBe(2);
      expect(err.join("\n")).toMatch(why);
    }
    err.length = 0;
    expect(await main(["tail", "--since", "5m", "--role", "live"])).toBe(2);
    expect(err.join("\n")).toMatch(/--since replays through a JetStream consumer, which the live user may not make: use --role ui/);
  });

  it("holds up's and the master's heartbeat to what a worker takes (up restarted its worker for ever, and its dashboard on a derived variable)", async () => {
    for (const [cmd, flag] of [["up", "--heartbeat-ms"], ["master", "--heartbeat-interval"]] as const) {
      err.length = 0;
      expect(await main([cmd, flag, "4000000"]), cmd).toBe(2);
      expect(err.join("\n"), cmd).toMatch(/--heartbeat-.*: must be at most 3600000/);
    }
  });

  it("rotate-key refuses a data dir without credentials.env instead of making a new one (a key the master never used)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "troupe-cli-rotate-"));
    expect(await main(["rotate-key", "--data-dir", dir])).toBe(2);
    expect(err.join("\n")).toMatch(/is not the data dir of a `troupe nats` or `troupe up` \(no .*credentials\.env\)/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("rotate-key says how to restart under troupe up, which restarts no single service (it said only 'restart the master')", async () => {
    const dir = mkdtempSync(join(tmpdir(), "troupe-cli-rotate-"));
    ensureCredentials(dir);
    expect(await main(["rotate-key", "--data-dir", dir])).toBe(0);
    expect(out.join("\n")).toMatch(/restart the master \(under `troupe up`: stop it with Ctrl-C and start it again; its own workers read the new key from credentials\.env, unless TROUPE_SECRETS_KEY is set in its environment\)/);
  });

  it.each([
    ["ui refuses half of a credential pair at start (it served pages and failed at the first command)", "TROUPE_NATS_UI_USER", "ui", ["ui", "--no-build"], /TROUPE_NATS_UI_USER is set but TROUPE_NATS_UI_PASSWORD is not/],
    ["up refuses TROUPE_REPLICAS above 1: it runs one nats-server, and its master would apply it", "TROUPE_REPLICAS", "3", ["up"], /TROUPE_REPLICAS=3: up runs one nats-server, not a cluster/],
    ["rejects a bad value from the environment, naming the variable", "TROUPE_REPLICAS", "0", ["init"], /TROUPE_REPLICAS: must be at least 1/],
  ] as const)("%s", async (_name, variable, value, argv, message) => {
    process.env[variable] = value;
    try {
      expect(await main([...argv])).toBe(2);
      expect(err.join("\n")).toMatch(message);
    } finally {
      delete process.env[variable];
    }
  });
});

describe("tail --since", () => {
  it("parses sequences, times and durations", () => {
    expect(parseSince("42")).toEqual({ seq: 42 });
    expect(parseSince("2026-01-15T10:30:00Z")).toEqual({ time: "2026-01-15T10:30:00.000Z" });
    expect(parseSince("5m", Date.parse("2026-01-15T10:30:00Z"))).toEqual({ time: "2026-01-15T10:25:00.000Z" });
    expect(() => parseSince("0")).toThrow(/start at 1/);
    // Out of range: a clear usage error, not the server's "invalid JSON" or a RangeError.
    expect(() => parseSince("99999999999999999999")).toThrow(/--since: sequence 99999999999999999999 is beyond any stream's/);
    expect(() => parseSince("99999999999999d")).toThrow(/--since: 99999999999999d ago is before 1970/);
    // V8 reads 2026-02-30 as 2 March.
    expect(() => parseSince("2026-02-30")).toThrow(/--since: 2026-02-30 is not a day of the calendar/);
    expect(() => parseSince("2026-13-01T00:00:00Z")).toThrow(/--since: expected a sequence number/);
    expect(parseSince("2028-02-29")).toEqual({ time: "2028-02-29T00:00:00.000Z" });
  });
});

describe("retry and cancel", () => {
  it("refuse the bulk form's flags without --status, even --limit at its default (before any connection)", async () => {
    for (const argv of [["cancel", "j1", "--limit", "1000"], ["retry", "j1", "--limit=5"], ["cancel", "j1", "--search", "x"], ["retry", "--dry-run", "j1"]]) {
      err.length = 0;
      expect(await main(argv), argv.join(" ")).toBe(2);
      expect(err.join("\n"), argv.join(" ")).toMatch(/--search, --worker, --limit and --dry-run choose jobs for --status; give --status too/);
    }
    err.length = 0;
    expect(await main(["cancel", "--status", "queued", "--search", " "])).toBe(2);
    expect(err.join("\n")).toMatch(/--search: the search is blank/);
  });
});

describe("jobs and workers from the read models", () => {
  type Msg = <T extends EventType>(type: T, data: EventData<T>) => RawMessage;
  type Spec = { url: string; priority: number; maxAttempts: number; timeoutMs: number };
  /** A real read-model file with one queued, one cancelled and one dead job, and a worker that has finished none; then `more`. */
  function readModels(more: (msg: Msg, spec: Spec) => RawMessage[] = () => [], beats: (msg: Msg) => RawMessage[] = () => []): string {
    const path = join(mkdtempSync(join(tmpdir(), "troupe-cli-jobs-")), "rm.sqlite");
    const gen = newGenerationPath(path);
    const w = new ReadModelWriter(openWriterDb(gen, "live"), { subjects, seriesRetentionMs: 3600_000, clockMs: Date.now });
    swapIn(path, gen);
    const t0 = Date.now() - 60_000;
    let seq = 0;
    const msg = <T extends EventType>(type: T, data: EventData<T>): RawMessage => {
      const e = createEvent(type, data, "t", new Date(t0 + seq * 1000)) as TroupeEvent;
      return { seq: ++seq, subject: subjectOf(e), data: encodeEvent(e), publishedMs: t0 + seq * 1000 };
    };
    const spec = { url: "https://e.com/x", priority: 5, maxAttempts: 3, timeoutMs: 60_000 };
    w.applyBatch("TROUPE_EVENTS", [
      msg("worker.registered", {
        workerId: "w-new", instanceId: "i1", name: "new", type: "puppeteer", ip: "10.0.0.1", port: 3002, version: "1",
        capabilities: { maxConcurrentJobs: 2, memory: 1024, cpu: 2, supportedBrowsers: [] },
      }),
      msg("job.submitted", { jobId: "j-queued", spec }), msg("job.submitted", { jobId: "j-cancelled", spec }), msg("job.submitted", { jobId: "j-dead", spec }),
      msg("job.cancelled", { jobId: "j-cancelled", epoch: 0 }), msg("job.dead", { jobId: "j-dead", reason: "expired", attempts: 0, epoch: 0 }),
      ...more(msg, spec),
    ]);
    w.applyBatch("TROUPE_HEARTBEATS", beats(msg));
    w.db.close();
    return path;
  }

  it("takes several statuses comma-separated, as the API and retry/cancel --status do; a bad one is a usage error naming it", async () => {
    const db = readModels();
    expect(await main(["jobs", "--db", db, "--status", "cancelled,dead", "--json"])).toBe(0);
    const ids = (JSON.parse(out.join("\n")) as { jobs: { id: string }[] }).jobs.map((j) => j.id).sort();
    expect(ids).toEqual(["j-cancelled", "j-dead"]);
    out.length = 0;
    expect(await main(["jobs", "--db", db, "--status", "queued", "--json"])).toBe(0);
    expect((JSON.parse(out.join("\n")) as { jobs: { id: string }[] }).jobs.map((j) => j.id)).toEqual(["j-queued"]);
    for (const bad of ["cancelled,", "dead,gone"]) {
      err.length = 0;
      expect(await main(["jobs", "--db", db, "--status", bad]), bad).toBe(2);
      expect(err.join("\n"), bad).toMatch(/--status: expected one or more of queued, .* \(comma-separated\), got "(gone)?"/);
    }
  });

  it("jobs --ran-on lists the jobs that ran on a worker, one that failed there and completed elsewhere too, with what came of it there and where it is now", async () => {
    const db = readModels((msg, spec) => [
      msg("job.submitted", { jobId: "j-moved", spec }),
      msg("job.assigned", { jobId: "j-moved", workerId: "w-a", attempt: 1, epoch: 1 }),
      msg("job.started", { jobId: "j-moved", workerId: "w-a", attempt: 1 }),
      msg("job.failed", { jobId: "j-moved", workerId: "w-a", attempt: 1, error: { message: "waited 5 s for #buy", code: "timeout", retryable: true } }),
      msg("job.requeued", { jobId: "j-moved", attempt: 2, reason: "failed-retryable", notBefore: new Date().toISOString(), epoch: 1 }),
      msg("job.assigned", { jobId: "j-moved", workerId: "w-b", attempt: 2, epoch: 1 }),
      msg("job.completed", { jobId: "j-moved", workerId: "w-b", attempt: 2, result: { success: true, data: {}, dataExtracted: 0, screenshots: [], logs: [] }, metrics: { totalDuration: 10, responseTime: 1, memoryUsed: 1 } }),
    ]);
    // --worker is the current worker: the job left w-a's list when it completed on w-b.
    expect(await main(["jobs", "--db", db, "--worker", "w-a", "--json"])).toBe(0);
    expect((JSON.parse(out.join("\n")) as { jobs: unknown[] }).jobs).toEqual([]);
    out.length = 0;
    expect(await main(["jobs", "--db", db, "--ran-on", "w-a"])).toBe(0);
    const [head, row, ...rest] = out.join("\n").split("\n");
    expect(rest).toEqual([]);
    const cell = (col: string) => row!.slice(head!.indexOf(col)).split(/\s{2,}/)[0];
    expect([cell("ID"), cell("ATTEMPT"), cell("HERE"), cell("ERROR"), cell("NOW")]).toEqual(["j-moved", "1", "failed", "timeout", "completed on w-b, attempt 2"]);
    out.length = 0;
    expect(await main(["jobs", "--db", db, "--ran-on", "w-a", "--json"])).toBe(0);
    const json = JSON.parse(out.join("\n")) as { workerId: string; recentJobs: { job: { id: string; status: string }; attempts: { workerId: string; outcome: string }[] }[] };
    expect(json.workerId).toBe("w-a");
    expect(json.recentJobs.map((r) => [r.job.id, r.job.status, r.attempts.map((a) => `${a.workerId}:${a.outcome}`)])).toEqual([["j-moved", "completed", ["w-a:failed", "w-b:completed"]]]);
    for (const extra of [["--status", "failed"], ["--worker", "w-b"], ["--search", "x"], ["--cursor", "c"]]) {
      err.length = 0;
      expect(await main(["jobs", "--db", db, "--ran-on", "w-a", ...extra]), extra.join(" ")).toBe(2);
      expect(err.join("\n")).toContain(`it takes no ${extra[0]}`);
    }
    // A control character is refused as what the user gave (it said "q:", and exit 1).
    err.length = 0;
    expect(await main(["jobs", "--db", db, "--search", "a\u0001"])).toBe(2);
    expect(err.join("\n")).toMatch(/--search: the search holds a control character/);
  });

  it("prints the next page's command with the filters and page size it was given (the cursor alone paged through every job)", async () => {
    const db = readModels();
    expect(await main(["jobs", "--db", db, "--status", "cancelled,dead", "--limit", "1"])).toBe(0);
    const more = out.join("\n").match(/^more: troupe (jobs .*)$/m)?.[1];
    expect(more).toContain(`--db ${db} --status cancelled,dead --limit 1 --cursor `);
    out.length = 0;
    expect(await main([...more!.split(" "), "--json"])).toBe(0);
    expect((JSON.parse(out.join("\n")) as { jobs: { id: string }[] }).jobs.map((j) => j.id)).toEqual(["j-cancelled"]);
  });

  it("without read models at the data dir, says to start the projector or give the stack's data dir", async () => {
    const dir = mkdtempSync(join(tmpdir(), "troupe-cli-empty-"));
    for (const cmd of ["jobs", "workers"]) {
      err.length = 0;
      expect(await main([cmd, "--data-dir", dir]), cmd).toBe(1);
      expect(err.join("\n"), cmd).toMatch(/no read models at .* yet — start the projector \(troupe projector\), or, if the stack runs with another data dir .*give --data-dir <dir> or TROUPE_DATA_DIR=<dir>/);
    }
  });

  it("workers shows a worker suspect after two of its own heartbeat intervals of silence, as the dashboard does (it waited a fixed 90 s); --suspect-after-ms sets a floor", async () => {
    const beat = (heartbeatMs: number) => (msg: Msg) => [msg("worker.heartbeat", {
      workerId: "w-new", instanceId: "i1", status: "online", currentJobs: 0, maxConcurrentJobs: 2, jobIds: [], heartbeatMs,
      metrics: { memoryUsage: 1, cpuUsage: 1, diskUsage: 1, networkUsage: 0, jobsCompleted: 0, jobsFailed: 0, averageResponseTime: 0 },
      performance: { successRate: 0, averageJobDuration: 0 },
    })];
    // The heartbeat is about 50 s old.
    const status = async (db: string, ...flags: string[]) => {
      out.length = 0;
      expect(await main(["workers", "--db", db, "--json", ...flags])).toBe(0);
      return (JSON.parse(out.join("\n")) as { workers: { id: string; status: string }[] }).workers.find((w) => w.id === "w-new")?.status;
    };
    const fast = readModels(undefined, beat(10_000));
    expect(await status(fast)).toBe("suspect");
    expect(await status(fast, "--suspect-after-ms", "90000")).toBe("online");
    expect(await status(readModels(undefined, beat(60_000)))).toBe("online");
  });

  it("workers shows no success rate for a worker that has finished no job (it said 0 %)", async () => {
    expect(await main(["workers", "--db", readModels()])).toBe(0);
    const [head, row] = out.join("\n").split("\n");
    const cell = (line: string, col: string) => line.slice(head!.indexOf(col)).split(/\s{2,}/)[0];
    expect(row).toMatch(/^w-new /);
    expect(cell(row!, "SUCCESS 60 MIN")).toBe("-");
    expect(cell(row!, "ALL TIME")).toBe("-");
  });

  it("workers shows the success rate of the last 60 min beside the all-time one, and --json has the API's performance.recent", async () => {
    const db = readModels((msg, spec) => [
      msg("job.submitted", { jobId: "j-ok", spec }), msg("job.assigned", { jobId: "j-ok", workerId: "w-new", attempt: 1, epoch: 1 }),
      msg("job.completed", { jobId: "j-ok", workerId: "w-new", attempt: 1, result: { success: true, data: {}, dataExtracted: 0, screenshots: [], logs: [] }, metrics: { totalDuration: 1, responseTime: 1, memoryUsed: 1 } }),
      msg("job.submitted", { jobId: "j-bad", spec }), msg("job.assigned", { jobId: "j-bad", workerId: "w-new", attempt: 1, epoch: 1 }),
      msg("job.failed", { jobId: "j-bad", workerId: "w-new", attempt: 1, error: { message: "boom", code: "timeout", retryable: false } }),
    ]);
    expect(await main(["workers", "--db", db])).toBe(0);
    const [head, row] = out.join("\n").split("\n");
    const cell = (line: string, col: string) => line.slice(head!.indexOf(col)).split(/\s{2,}/)[0];
    expect(cell(row!, "SUCCESS 60 MIN")).toBe("50% (1/2)");
    expect(cell(row!, "ALL TIME")).toBe("50%");
    out.length = 0;
    expect(await main(["workers", "--db", db, "--json"])).toBe(0);
    const w = (JSON.parse(out.join("\n")) as { workers: { performance: { recent: unknown } }[] }).workers[0]!;
    expect(w.performance.recent).toMatchObject({ windowMinutes: 60, jobsCompleted: 1, jobsFailed: 1, successRate: 50 });
  });

  it("workers shows no CPU, memory or running jobs for a lost worker (its last readings, from minutes before, read as its load now)", async () => {
    // (A heartbeat after the loss would bring it back: its readings are the registration's, shown as "0%" before.)
    const lost = readModels((msg) => [msg("worker.lost", { workerId: "w-new", instanceId: "i1", lastSeen: new Date(Date.now() - 30_000).toISOString(), epoch: 1, jobIds: [] })]);
    expect(await main(["workers", "--db", lost])).toBe(0);
    const [head, row] = out.join("\n").split("\n");
    const cell = (line: string, col: string) => line.slice(head!.indexOf(col)).split(/\s{2,}/)[0];
    expect(cell(row!, "STATUS")).toBe("lost");
    expect([cell(row!, "JOBS"), cell(row!, "CPU"), cell(row!, "MEM")]).toEqual(["-/2", "-", "-"]);
  });
});

describe("tail --json lines", () => {
  it("prints a valid event's JSON as it came, and no raw control character of any message (a worker may publish any bytes)", () => {
    const event = '{"type":"job.progress","data":{"message":"\\u001b[2J ok"}}';
    expect(jsonLine(new TextEncoder().encode(event))).toBe(event);
    const forged = `{"a":"\u001b[2J\u009b31m"}\n{"forged":"line"}\r\t`;
    const line = jsonLine(new TextEncoder().encode(forged));
    expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    expect(line).toBe('{"a":"\\u001b[2J\\u009b31m"} {"forged":"line"}  ');
    // Escaped, the string holds the same characters (raw, it was not even valid JSON).
    expect(JSON.parse(line.split(" ")[0] as string)).toEqual({ a: "\u001b[2J\u009b31m" });
  });
});

describe("tail lines", () => {
  it("show control characters a worker wrote as \\xNN instead of sending them to the terminal", () => {
    const e = createEvent("worker.registered", {
      workerId: "bad-ansi", instanceId: "i1", name: "\u001b[2J\u001b]0;evil\u0007", type: "x", ip: "\u001b[1A", port: 1, version: "1",
      capabilities: { maxConcurrentJobs: 1, memory: 1, cpu: 1, supportedBrowsers: [] },
    }, "bad-ansi") as TroupeEvent;
    const line = formatLine(subjects.worker("bad-ansi", "registered"), encodeEvent(e), subjects);
    expect(line).not.toMatch(/[\u0000-\u001f]/);
    expect(line).toMatch(/\\x1b\[2J/);
  });

  it("number steps from 1, as the error messages and pages do", () => {
    const e = createEvent("job.failed", {
      jobId: "j-step", workerId: "w", attempt: 1,
      error: { message: "step 2 (assert): no element matches #x", code: "assertion", retryable: false, step: { index: 1, type: "assert" } },
    }, "w") as TroupeEvent;
    expect(formatLine(subjects.job("j-step", "failed"), encodeEvent(e), subjects)).toMatch(/ step=2:assert/);
  });
});

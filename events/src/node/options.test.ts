import { describe, expect, it } from "vitest";
import { bool, formatOptions, int, parseOptions, str, UsageError } from "./options.ts";
import { natsOptions } from "./common-options.ts";

const schema = {
  port: int("port", { env: "T_PORT", default: 3000, min: 1, max: 65535 }),
  name: str("name", { env: "T_NAME", pattern: /^[a-z]+$/, patternHelp: "lowercase letters" }),
  mode: str("mode", { choices: ["a", "b"], default: "a" }),
  demo: bool("demo", { env: "T_DEMO", default: false }),
};

describe("parseOptions", () => {
  it("takes flags over env over defaults", () => {
    expect(parseOptions(schema, [], {}).values).toEqual({ port: 3000, name: undefined, mode: "a", demo: false });
    expect(parseOptions(schema, [], { T_PORT: "4000", T_DEMO: "yes" }).values).toMatchObject({ port: 4000, demo: true });
    expect(parseOptions(schema, ["--port", "5000", "--demo"], { T_PORT: "4000" }).values).toMatchObject({ port: 5000, demo: true });
    expect(parseOptions(schema, ["--port=6000", "--no-demo", "--name=abc"], { T_DEMO: "1" }).values).toMatchObject({ port: 6000, demo: false, name: "abc" });
  });

  it.each([
    [["--port", "x"], {}, /--port: expected a whole number/],
    [["--port", "0"], {}, /--port: must be at least 1/],
    [["--port"], {}, /--port needs a value/],
    // A flag is not a value: `troupe cancel --reason --dry-run` cancelled for real (a review).
    [["--mode", "--demo"], {}, /--mode needs a value, got the flag --demo; a value that starts with -- is written --mode=--demo/],
    [["--name", "ABC"], {}, /--name: expected lowercase letters/],
    [["--mode", "c"], {}, /--mode: expected one of a, b/],
    [["--colour"], {}, /unknown flag --colour/],
    [["extra"], {}, /unexpected argument "extra"/],
    [["--mode", "a", "--mode=b"], {}, /--mode is given more than once; give it once \(it takes one value\)/],
    [["--demo", "--no-demo"], {}, /--demo is given more than once; give it once$/],
    [["--no-demo=false"], {}, /--no-demo takes no value; write --no-demo alone, or --demo=<true\|false>/],
    [[], { T_PORT: "99999" }, /T_PORT: must be at most 65535/],
    [[], { T_DEMO: "maybe" }, /T_DEMO: expected true or false/],
  ])("rejects %j %j", (argv, env, message) => {
    expect(() => parseOptions(schema, argv, env, { maxPositionals: 0 })).toThrow(UsageError);
    expect(() => parseOptions(schema, argv, env, { maxPositionals: 0 })).toThrow(message);
  });

  it("takes a value that starts with -- when written --flag=--value", () => {
    const free = { reason: str("reason", { default: "" }) };
    expect(parseOptions(free, ["--reason=--dry-run"], {}).values).toEqual({ reason: "--dry-run" });
    expect(parseOptions(free, ["--reason", "-x"], {}).values).toEqual({ reason: "-x" });
  });

  it("takes an option's other flag as the option, once: the master's --heartbeat-interval is also --heartbeat-ms, as the worker and up name it", () => {
    const aliased = { heartbeatInterval: int("interval", { env: "T_HB", default: 30_000, metavar: "<ms>", aliases: ["--heartbeat-ms"] }) };
    expect(parseOptions(aliased, ["--heartbeat-ms", "10000"], {}).values).toEqual({ heartbeatInterval: 10_000 });
    expect(parseOptions(aliased, ["--heartbeat-interval=20000"], {}).values).toEqual({ heartbeatInterval: 20_000 });
    expect(() => parseOptions(aliased, ["--heartbeat-ms", "x"], {})).toThrow(/--heartbeat-ms: expected a whole number/);
    expect(() => parseOptions(aliased, ["--heartbeat-ms", "1", "--heartbeat-interval", "2"], {})).toThrow(/--heartbeat-interval is given more than once/);
    expect(formatOptions(aliased)).toMatch(/--heartbeat-interval, --heartbeat-ms <ms>\s+interval \(default 30000\) \[T_HB\]/);
  });

  it("documents flags, defaults and variables", () => {
    const help = formatOptions(schema);
    expect(help).toMatch(/--port <n>\s+port \(default 3000\) \[T_PORT\]/);
    expect(help).toMatch(/--demo\s+demo \(default false\) \[T_DEMO\]/);
  });
});

describe("the shared NATS options", () => {
  it("NATS_URL: every entry of the list is nats:// or tls:// (any case); anything else names the flag", () => {
    const url = (v: string) => parseOptions(natsOptions, [], { NATS_URL: v }).values.natsUrl;
    expect(url("nats://a.example:4222, TLS://b.example:4222,tls://10.0.0.3:4222")).toBe("nats://a.example:4222, TLS://b.example:4222,tls://10.0.0.3:4222");
    for (const bad of ["nats://a:4222,ws://b:4223", "a.example:4222", "nats://a:4222,", "nats://a:4222 nats://b:4222"]) {
      expect(() => url(bad), bad).toThrow(/NATS_URL: expected nats:\/\/host:port or tls:\/\/host:port/);
    }
  });
});

describe("whole-number options without a maximum of their own", () => {
  it("stop at 2^31 - 1, the longest a Node timer holds (a tick of 99999999999 ms once made a 1 ms tick), and say so without printing 400 digits", () => {
    const schema = { tickMs: int("tick", { env: "T_TICK", default: 1000, min: 1 }) };
    expect(parseOptions(schema, [], { T_TICK: "2147483647" }).values.tickMs).toBe(2_147_483_647);
    expect(() => parseOptions(schema, [], { T_TICK: "99999999999" })).toThrow(/T_TICK\]?: must be at most 2147483647, got 99999999999/);
    expect(() => parseOptions(schema, [], { T_TICK: "9".repeat(400) })).toThrow(/must be at most 2147483647, got 9{20}…$/);
  });
});

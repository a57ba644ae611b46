import { startTestNats, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnChild } from "./helpers.ts";

/** `troupe submit` against a master that takes a request and does not answer in time (paused, not dead). */

let nats: TestNats;
beforeAll(async () => {
  nats = await startTestNats({ init: true });
});
afterAll(async () => {
  await nats?.stop();
});

describe("troupe submit when a master does not answer in time", () => {
  it("asks again with the same idempotency key it generated (the master answers a repeated key with the first job: submit.test.ts)", async () => {
    // Stands in for the masters: swallows the first request (as a paused master would), answers the second.
    const nc = await nats.connect("master");
    const seen: { idempotencyKey?: string; url?: string }[] = [];
    const sub = nc.subscribe("troupe.rpc.jobs.submit", {
      callback: (_e, m) => {
        seen.push(JSON.parse(new TextDecoder().decode(m.data)) as { idempotencyKey?: string });
        if (seen.length >= 2) m.respond(JSON.stringify({ ok: true, jobId: "kjobfromtheretry", duplicate: true }));
      },
    });
    await nc.flush();
    try {
      const c = spawnChild(["bin/troupe.mjs", "submit", "--url", "https://example.com/paused", "--answer-timeout", "2000"], nats.env());
      const code = await new Promise<number | null>((r) => c.proc.once("exit", (code) => r(code)));
      expect(code, c.output()).toBe(0);
      expect(seen).toHaveLength(2);
      expect(seen[0]?.idempotencyKey).toMatch(/^cli-/);
      expect(seen[1]?.idempotencyKey).toBe(seen[0]?.idempotencyKey);
      expect(c.output()).toMatch(/no answer within 2 s; asking again with the same idempotency key \(2\/3\)/);
      expect(c.output().split("\n")).toContain("kjobfromtheretry");
      // The key was ours, not the user's: no "already submitted" remark.
      expect(c.output()).not.toMatch(/already submitted/);
    } finally {
      sub.unsubscribe();
      await nc.close();
    }
  }, 60_000);

  it("with no master listening at all, fails at once without hinting that a job may exist", async () => {
    const c = spawnChild(["bin/troupe.mjs", "submit", "--url", "https://example.com/nobody", "--answer-timeout", "1000"], nats.env());
    const code = await new Promise<number | null>((r) => c.proc.once("exit", (code) => r(code)));
    expect(code).toBe(1);
    expect(c.output()).toMatch(/no answer from a master on troupe\.rpc\.jobs\.submit: .*no responders/i);
    expect(c.output()).not.toMatch(/asking again|may have been recorded/);
  }, 60_000);

  it("refused as unavailable (the master's append got no confirmation), gives the key it made up, so the user can ask again without a duplicate", async () => {
    const nc = await nats.connect("master");
    const keys: string[] = [];
    const sub = nc.subscribe("troupe.rpc.jobs.submit", {
      callback: (_e, m) => {
        keys.push((JSON.parse(new TextDecoder().decode(m.data)) as { idempotencyKey: string }).idempotencyKey);
        m.respond(JSON.stringify({ ok: false, error: { code: "unavailable", message: "the log did not confirm the job (requests closed); it may have been recorded all the same, as job kx: submit it again with the same idempotencyKey to find out (a key is never recorded twice)" } }));
      },
    });
    await nc.flush();
    try {
      const c = spawnChild(["bin/troupe.mjs", "submit", "--url", "https://example.com/unconfirmed"], nats.env());
      const code = await new Promise<number | null>((r) => c.proc.once("exit", (code) => r(code)));
      expect(code).toBe(1);
      expect(keys).toHaveLength(1);
      expect(c.output()).toContain(`To try again without a duplicate, add --idempotency-key ${keys[0]}`);
    } finally {
      sub.unsubscribe();
      await nc.close();
    }
  }, 60_000);

  it("gives up after three tries and says how to try again without a duplicate", async () => {
    const nc = await nats.connect("master");
    const sub = nc.subscribe("troupe.rpc.jobs.submit", { callback: () => {} });
    await nc.flush();
    try {
      const c = spawnChild(["bin/troupe.mjs", "submit", "--url", "https://example.com/never", "--answer-timeout", "1000"], nats.env());
      const code = await new Promise<number | null>((r) => c.proc.once("exit", (code) => r(code)));
      expect(code).toBe(1);
      expect(c.output()).toMatch(/The job may have been recorded all the same: to try again without a duplicate, add --idempotency-key cli-\S+/);
    } finally {
      sub.unsubscribe();
      await nc.close();
    }
  }, 60_000);
});

import { jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { Objm } from "@nats-io/obj";
import { createEvent, decodeEvent, type TroupeEvent } from "@troupe/events";
import { ArtifactRetentionError, DEFAULT_HEARTBEAT_MAX_AGE_MS, initStores, MIN_ARTIFACT_MAX_BYTES, publishEvent, putArtifact } from "@troupe/events/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { natsWebSocketLogin, startTestNats, waitFor, type TestNats } from "../harness/index.ts";

let nats: TestNats;
beforeAll(async () => {
  nats = await startTestNats({ init: true });
});
afterAll(async () => {
  await nats?.stop();
});

const submitted = (jobId = "job-1") =>
  createEvent("job.submitted", { jobId, spec: { url: "https://example.com", priority: 5, maxAttempts: 3, timeoutMs: 60_000 } }, "master-test") as TroupeEvent;

describe("troupe init", () => {
  it("creates the streams with the documented settings", async () => {
    const nc = await nats.connect("master");
    const jsm = await jetstreamManager(nc);
    const ev = (await jsm.streams.info("TROUPE_EVENTS")).config;
    expect(ev.subjects).toEqual(["troupe.evt.>"]);
    expect(ev.storage).toBe(StorageType.File);
    expect(ev.max_age).toBe(0);
    expect(ev.duplicate_window).toBe(120 * 1e9);
    expect(ev.num_replicas).toBe(1);
    expect([ev.deny_delete, ev.deny_purge]).toEqual([true, true]);
    // Not even the master's credential empties the log (an answer aimed at the purge API was a way, docs/security.md).
    await expect(jsm.streams.purge("TROUPE_EVENTS")).rejects.toThrow(/purge not permitted/);
    const hb = (await jsm.streams.info("TROUPE_HEARTBEATS")).config;
    expect(hb.subjects).toEqual(["troupe.hb.>"]);
    expect(hb.max_age).toBe(7 * 24 * 3600 * 1e9);
    expect(hb.storage).toBe(StorageType.File);
    expect(await (await new Objm(nc).open("troupe-artifacts")).status()).toMatchObject({ bucket: "troupe-artifacts" });
    expect((await (await new Kvm(nc).open("troupe-master")).status()).bucket).toBe("troupe-master");
  });

  it("runs nats-server with a 20 s ping interval and 3 unanswered pings, so a paused client is dropped in about a minute", async () => {
    const varz = (await (await fetch(`${nats.monitorUrl}/varz`)).json()) as { ping_interval: number; ping_max: number };
    expect(varz.ping_interval).toBe(20 * 1e9);
    expect(varz.ping_max).toBe(3);
  });

  it("is idempotent and applies a changed heartbeat retention", async () => {
    const nc = await nats.connect("master");
    const again = await initStores(nc);
    expect(again.streams.map((s) => s.action)).toEqual(["unchanged", "unchanged"]);
    const changed = await initStores(nc, { heartbeatMaxAgeMs: 3600_000 });
    expect(changed.streams).toEqual([{ name: "TROUPE_EVENTS", action: "unchanged" }, { name: "TROUPE_HEARTBEATS", action: "updated" }]);
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info("TROUPE_HEARTBEATS")).config.max_age).toBe(3600 * 1e9);
    // Not asked for, left as it is: a master or `up` started without the setting must not undo it.
    expect((await initStores(nc)).streams.map((s) => s.action)).toEqual(["unchanged", "unchanged"]);
    expect((await jsm.streams.info("TROUPE_HEARTBEATS")).config.max_age).toBe(3600 * 1e9);
    await initStores(nc, { heartbeatMaxAgeMs: DEFAULT_HEARTBEAT_MAX_AGE_MS }); // back to the default for the other tests
  });

  it("makes an events log created before deny_purge unpurgeable too, and says it updated it", async () => {
    const fresh = await startTestNats();
    try {
      const nc = await fresh.connect("master");
      const jsm = await jetstreamManager(nc);
      // The events stream as troupe init made it until 2026-12-01: single deletes denied, purges not.
      await jsm.streams.add({ name: "TROUPE_EVENTS", subjects: ["troupe.evt.>"], storage: StorageType.File, duplicate_window: 120 * 1e9, deny_delete: true, allow_direct: false, description: "Troupe events: the source of truth, kept forever" });
      await jetstream(nc).publish("troupe.evt.job.j1.submitted", JSON.stringify(submitted("j1")));
      const report = await initStores(nc);
      expect(report.streams).toEqual([{ name: "TROUPE_EVENTS", action: "updated" }, { name: "TROUPE_HEARTBEATS", action: "created" }]);
      const info = await jsm.streams.info("TROUPE_EVENTS");
      expect([info.config.deny_purge, info.state.messages]).toEqual([true, 1]);
      await expect(jsm.streams.purge("TROUPE_EVENTS")).rejects.toThrow(/purge not permitted/);
      expect((await initStores(nc)).streams.map((s) => s.action)).toEqual(["unchanged", "unchanged"]);
    } finally {
      await fresh.stop();
    }
  });

  it("leaves an events log whose roll-ups an operator allowed purgeable, with a warning, instead of failing (nats-server refuses deny_purge beside roll-ups)", async () => {
    const fresh = await startTestNats();
    try {
      const nc = await fresh.connect("master");
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: "TROUPE_EVENTS", subjects: ["troupe.evt.>"], storage: StorageType.File, duplicate_window: 120 * 1e9, deny_delete: true, allow_direct: false, allow_rollup_hdrs: true, description: "Troupe events: the source of truth, kept forever" });
      const report = await initStores(nc);
      expect(report.streams[0]).toEqual({ name: "TROUPE_EVENTS", action: "unchanged" });
      expect(report.warnings.join("\n")).toMatch(/stream TROUPE_EVENTS still allows purges: nats-server refused deny_purge/);
      expect((await jsm.streams.info("TROUPE_EVENTS")).config.deny_purge).toBe(false);
    } finally {
      await fresh.stop();
    }
  });

  it("refuses replicas above 1 on a server outside a cluster, leaving the streams as they are (2.9.10 took the update, then did not load them after a restart)", async () => {
    const nc = await nats.connect("master");
    await expect(initStores(nc, { replicas: 3 })).rejects.toThrow(/3 replicas need a nats-server cluster, and .* is not in one .*leave TROUPE_REPLICAS unset or 1/);
    const jsm = await jetstreamManager(nc);
    for (const name of ["TROUPE_EVENTS", "TROUPE_HEARTBEATS", "KV_troupe-master", "OBJ_troupe-artifacts"]) expect((await jsm.streams.info(name)).config.num_replicas, name).toBe(1);
  });

  it("lets the heartbeats be read back by direct get (a worker's clock sample), and turns it on for a stream made before", async () => {
    const nc = await nats.connect("master");
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info("TROUPE_HEARTBEATS")).config.allow_direct).toBe(true);
    expect((await jsm.streams.info("TROUPE_EVENTS")).config.allow_direct).toBe(false);
    const cur = (await jsm.streams.info("TROUPE_HEARTBEATS")).config;
    await jsm.streams.update("TROUPE_HEARTBEATS", { ...cur, allow_direct: false });
    expect((await initStores(nc)).streams).toEqual([{ name: "TROUPE_EVENTS", action: "unchanged" }, { name: "TROUPE_HEARTBEATS", action: "updated" }]);
    expect((await jsm.streams.info("TROUPE_HEARTBEATS")).config.allow_direct).toBe(true);
  });

  it("sets the artifact store's retention only when told: a max age, a size cap that drops the oldest first, 0 back to forever", async () => {
    const nc = await nats.connect("master");
    const jsm = await jetstreamManager(nc);
    const cfg = async () => (await jsm.streams.info("OBJ_troupe-artifacts")).config;
    // Created as @nats-io/obj does: kept forever, no cap.
    expect(await cfg()).toMatchObject({ max_age: 0, max_bytes: -1, discard: "new" });
    expect((await initStores(nc)).artifactsRetention).toBeUndefined();

    const r = await initStores(nc, { artifactMaxAgeMs: 48 * 3600_000, artifactMaxBytes: 128 * 1024 * 1024 });
    expect(r.artifactsRetention).toBe("updated");
    expect(await cfg()).toMatchObject({ max_age: 48 * 3600 * 1e9, max_bytes: 128 * 1024 * 1024, discard: "old" });
    expect((await initStores(nc, { artifactMaxAgeMs: 48 * 3600_000, artifactMaxBytes: 128 * 1024 * 1024 })).artifactsRetention).toBe("unchanged");
    // A start without the settings (a master whose environment lacks them) leaves them as they are.
    await initStores(nc);
    expect(await cfg()).toMatchObject({ max_age: 48 * 3600 * 1e9, max_bytes: 128 * 1024 * 1024, discard: "old" });
    // One setting alone changes only that one.
    expect((await initStores(nc, { artifactMaxAgeMs: 0 })).artifactsRetention).toBe("updated");
    expect(await cfg()).toMatchObject({ max_age: 0, max_bytes: 128 * 1024 * 1024, discard: "old" });
    expect((await initStores(nc, { artifactMaxBytes: 0 })).artifactsRetention).toBe("updated");
    expect(await cfg()).toMatchObject({ max_age: 0, max_bytes: -1, discard: "new" });
  });

  it("refuses an artifact retention that would drop screenshots as they are written", async () => {
    const nc = await nats.connect("master");
    await expect(initStores(nc, { artifactMaxBytes: MIN_ARTIFACT_MAX_BYTES - 1 })).rejects.toThrow(/at least 67108864 \(64 MB\)/);
    await expect(initStores(nc, { artifactMaxAgeMs: 500 })).rejects.toThrow(/at least 1000 ms/);
    await expect(initStores(nc, { artifactMaxAgeMs: -1 })).rejects.toThrow(/whole number >= 0/);
    expect((await (await jetstreamManager(nc)).streams.info("OBJ_troupe-artifacts")).config).toMatchObject({ max_age: 0, max_bytes: -1 });
  });

  it("names the setting when nats-server refuses a cap it cannot reserve, with every other store in place", async () => {
    const nc = await nats.connect("master");
    const huge = 2 ** 50; // 1 PB: more than JetStream may reserve here
    const refused = await initStores(nc, { artifactMaxBytes: huge }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ArtifactRetentionError);
    expect((refused as Error).message).toMatch(/^nats-server refused the screenshot store's size cap 1073741824 MB \(--artifact-max-mb, TROUPE_ARTIFACT_MAX_MB\): .*insufficient .*resources.*; the cap is more than nats-server's JetStream storage/);
    expect((await (await jetstreamManager(nc)).streams.info("OBJ_troupe-artifacts")).config.max_bytes).toBe(-1);
    expect((await (await new Kvm(nc).open("troupe-master")).status()).bucket).toBe("troupe-master");
  });

  it("nats-server removes screenshots older than the retention, in an append-only store too", async () => {
    const own = await startTestNats({ init: true });
    try {
      const nc = await own.connect("master");
      await initStores(nc, { artifactsAppendOnly: true, artifactMaxAgeMs: 1000 });
      const { js } = await own.js("worker");
      const jsm = await jetstreamManager(nc);
      const stored = async () => (await jsm.streams.info("OBJ_troupe-artifacts")).state.messages;
      await putArtifact(js, "troupe-artifacts", "job-old/1/000-page.png", new Uint8Array(300_000).fill(7));
      const store = await new Objm(nc).open("troupe-artifacts");
      expect((await store.info("job-old/1/000-page.png"))?.size).toBe(300_000);
      expect(await stored()).toBeGreaterThan(1);
      await waitFor("the expired screenshot removed", async () => (await stored()) === 0, 15_000, 100);
      expect(await store.info("job-old/1/000-page.png")).toBeNull();
      // A cap on an append-only store lets junk push screenshots out: said, not refused.
      expect((await initStores(nc, { artifactMaxAgeMs: 1000 })).warnings).toEqual([]);
      const capped = await initStores(nc, { artifactMaxBytes: MIN_ARTIFACT_MAX_BYTES });
      expect(capped.warnings).toEqual([expect.stringMatching(/^the screenshot store troupe-artifacts is append-only but capped at 64 MB: any worker credential can push every screenshot out/)]);
    } finally {
      await own.stop();
    }
  }, 30_000);
});

describe("events through JetStream", () => {
  it("round-trip: published, stored, read back and decoded", async () => {
    const { nc, js } = await nats.js("master");
    const e = submitted("job-rt");
    const ack = await publishEvent(js, e);
    expect(ack.stream).toBe("TROUPE_EVENTS");
    const jsm = await jetstreamManager(nc);
    const msg = await jsm.streams.getMessage("TROUPE_EVENTS", { seq: ack.seq });
    expect(msg?.subject).toBe("troupe.evt.job.job-rt.submitted");
    const r = decodeEvent(msg!.subject, msg!.data);
    expect(r).toEqual({ ok: true, value: e });
  });

  it("drops a duplicate Nats-Msg-Id inside the window", async () => {
    const { nc, js } = await nats.js("master");
    const e = submitted("job-dup");
    const first = await publishEvent(js, e);
    const second = await publishEvent(js, e);
    expect(first.duplicate).toBe(false);
    expect(second.duplicate).toBe(true);
    expect(second.seq).toBe(first.seq);
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info("TROUPE_EVENTS", { subjects_filter: "troupe.evt.job.job-dup.>" });
    expect(info.state.subjects?.["troupe.evt.job.job-dup.submitted"]).toBe(1);
  });

  it("refuses to publish an invalid event at the source", async () => {
    const { js } = await nats.js("master");
    const e = submitted("job-bad");
    (e.data as { spec: { priority: number } }).spec.priority = 99;
    await expect(publishEvent(js, e)).rejects.toThrow(/data\.spec\.priority/);
  });

  it("guards an append with the expected last subject sequence", async () => {
    const { js } = await nats.js("master");
    const assigned = (attempt: number) => createEvent("job.assigned", { jobId: "job-guard", workerId: "w1", attempt, epoch: 1 }, "m") as TroupeEvent;
    const first = await publishEvent(js, assigned(1), { expectLastSubjectSequence: 0 });
    await expect(publishEvent(js, assigned(1), { expectLastSubjectSequence: 0 })).rejects.toThrow(/wrong last sequence/i);
    await publishEvent(js, assigned(2), { expectLastSubjectSequence: first.seq });
  });
});

describe("permissions (real server, nats.conf)", () => {
  // A denied publish is not an error on publish(); the server reports a permissions violation
  // asynchronously and a JetStream publish gets no ack. Both are checked.
  async function permissionError(role: "live" | "worker" | "projector" | "ui", subject: string): Promise<string> {
    const nc = await nats.connect(role, `perm-${role}`);
    const statusErr = (async () => {
      for await (const s of nc.status()) {
        if (s.type === "error") return String((s as { error: unknown }).error);
      }
      return "";
    })();
    nc.publish(subject, "x");
    await nc.flush();
    const err = await Promise.race([statusErr, new Promise<string>((r) => setTimeout(() => r("no error within 2s"), 2000))]);
    return err;
  }

  it("the live user cannot publish anywhere", async () => {
    for (const subject of ["troupe.evt.job.j.submitted", "troupe.hb.w1", "troupe.rpc.jobs.submit", "anything"]) {
      expect(await permissionError("live", subject)).toMatch(/Permissions Violation for Publish/i);
    }
  });

  it("the live user can subscribe to events and heartbeats but not to commands", async () => {
    const live = await nats.connect("live", "live-sub");
    const got = new Promise<string>((resolve) => {
      const sub = live.subscribe("troupe.evt.>", { callback: (_e, m) => { resolve(m.subject); sub.unsubscribe(); } });
    });
    await live.flush();
    const { js } = await nats.js("master");
    await publishEvent(js, submitted("job-live"));
    expect(await got).toBe("troupe.evt.job.job-live.submitted");

    const statusErr = (async () => {
      for await (const s of live.status()) if (s.type === "error") return String((s as { error: unknown }).error);
      return "";
    })();
    live.subscribe("troupe.rpc.>");
    await live.flush();
    expect(await Promise.race([statusErr, new Promise((r) => setTimeout(() => r("none"), 2000))])).toMatch(/Permissions Violation for Subscription/i);
  });

  it.each(["troupe.evt.job.j1.assigned", "troupe.evt.job.j1.requeued", "troupe.evt.worker.w1.lost", "troupe.evt.job.j1.submitted", "troupe.worker.w1.assign"])(
    "the worker user cannot publish master subject %s",
    async (subject) => {
      expect(await permissionError("worker", subject)).toMatch(/Permissions Violation for Publish/i);
    },
  );

  it("the worker user can append its own events to JetStream", async () => {
    const { js } = await nats.js("worker");
    const e = createEvent("job.started", { jobId: "job-w", workerId: "w1", attempt: 1 }, "w1") as TroupeEvent;
    const ack = await publishEvent(js, e);
    expect(ack.stream).toBe("TROUPE_EVENTS");
  });

  it("a JetStream append the worker may not make gets no ack", async () => {
    const nc = await nats.connect("worker", "worker-js");
    const js = jetstream(nc, { timeout: 1500 });
    const e = createEvent("job.assigned", { jobId: "job-x", workerId: "w1", attempt: 1, epoch: 0 }, "w1") as TroupeEvent;
    await expect(publishEvent(js, e, { timeoutMs: 1500 })).rejects.toThrow();
  });

  it("the projector and ui users cannot append events", async () => {
    expect(await permissionError("projector", "troupe.evt.job.j.completed")).toMatch(/Permissions Violation for Publish/i);
    expect(await permissionError("ui", "troupe.evt.job.j.submitted")).toMatch(/Permissions Violation for Publish/i);
  });

  it("the ui user can discover workers through $SRV.PING (nats micro ls)", async () => {
    const worker = await nats.connect("worker", "fake-micro");
    worker.subscribe("$SRV.PING", { callback: (_e, m) => { m.respond(JSON.stringify({ name: "troupe-worker", id: "w1" })); } });
    await worker.flush();
    const ui = await nats.connect("ui", "ui-ping");
    const reply = await ui.request("$SRV.PING", "", { timeout: 2000 });
    expect(reply.json()).toEqual({ name: "troupe-worker", id: "w1" });
  });

  it("over WebSocket (the browser dashboards' listener) only the live user may log in; every other role is refused", async () => {
    const ws = new URL(nats.wsUrl);
    const login = (role: keyof typeof nats.credentials) => natsWebSocketLogin(ws.hostname, Number(ws.port), nats.credentials[role].user, nats.credentials[role].password);
    expect(await login("live")).toBe("PONG");
    for (const role of ["master", "worker", "projector", "ui"] as const) expect([role, await login(role)]).toEqual([role, "-ERR 'Authorization Violation'"]);
  });

  it("a wrong password is refused", async () => {
    const { connect } = await import("@nats-io/transport-node");
    await expect(connect({ servers: nats.url, user: "master", pass: "wrong", maxReconnectAttempts: 0 })).rejects.toThrow(/Authorization/i);
  });
});

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { natsConfForPrefix } from "./nats-conf.ts";
import { NATS_CONF } from "./nats-server.ts";

const conf = readFileSync(NATS_CONF, "utf8");
const quoted = (text: string) => text.split("\n").filter((l) => !/^\s*#/.test(l)).flatMap((l) => [...l.matchAll(/"([^"\n]*)"/g)].map((m) => m[1]!));

describe("natsConfForPrefix", () => {
  it("leaves nats.conf as it is for the default prefix", () => {
    expect(natsConfForPrefix(conf, "troupe")).toBe(conf);
  });

  it("renames every subject, stream, bucket and object store of nats.conf for another prefix, and nothing else", () => {
    const out = natsConfForPrefix(conf, "acme");
    const strings = quoted(out);
    expect(strings.filter((s) => /troupe/i.test(s))).toEqual([]);
    for (const s of [
      "acme.evt.job.*.submitted", "acme.worker.*.assign", "acme.rpc.>", "acme.hb.>", "acme.evt.>",
      "$JS.API.STREAM.INFO.ACME_EVENTS", "$JS.ACK.ACME_HEARTBEATS.>", "$KV.acme-master.>",
      "$O.acme-master-snapshots.>", "$JS.FC.OBJ_acme-master-snapshots.>", "$O.acme-artifacts.>", "$JS.API.STREAM.INFO.OBJ_acme-artifacts",
      "$JS.API.DIRECT.GET.ACME_HEARTBEATS.acme.hb.*",
    ]) expect(strings, s).toContain(s);
    // Strings without the prefix, variables and comments are untouched: the same lines, one for one.
    expect(strings.length).toBe(quoted(conf).length);
    expect(out).toContain("user: $TROUPE_NATS_MASTER_USER");
    expect(out.split("\n").filter((l) => /^\s*#/.test(l))).toEqual(conf.split("\n").filter((l) => /^\s*#/.test(l)));
    expect(strings).toContain("$JS.API.>");
  });

  it("maps a dashed prefix to the stream names the services use (acme-eu → ACME_EU_EVENTS, acme-eu-artifacts)", () => {
    const strings = quoted(natsConfForPrefix(conf, "acme-eu"));
    expect(strings).toContain("$JS.API.STREAM.INFO.ACME_EU_EVENTS");
    expect(strings).toContain("$O.acme-eu-artifacts.>");
    expect(strings).toContain("acme-eu.evt.>");
    expect(strings).toContain("$JS.API.DIRECT.GET.ACME_EU_HEARTBEATS.acme-eu.hb.*");
  });

  it("refuses a config naming the default prefix in a form it cannot rename, whatever the new prefix; and an invalid or reserved prefix", () => {
    for (const p of ["acme", "troupe-staging", "troupe2"]) {
      expect(() => natsConfForPrefix(`allow: ["troupe.evt.>", "$KV.troupe-other.>"]`, p), p).toThrow(/line 1: "\$KV\.troupe-other\.>" names the default prefix/);
    }
    expect(() => natsConfForPrefix(conf, "a b")).toThrow(/invalid subject prefix/);
    // Every role may use _INBOX.> for replies: a stack there would be open to every role.
    expect(() => natsConfForPrefix(conf, "_INBOX")).toThrow(/reserved by NATS/);
  });

  it("renames in one pass: a prefix that looks like one of the names it replaces is not renamed again", () => {
    const strings = quoted(natsConfForPrefix(conf, "OBJ_troupe-artifacts"));
    expect(strings).toContain("$JS.API.STREAM.INFO.OBJ_OBJ_troupe-artifacts-artifacts");
    expect(strings).toContain("OBJ_troupe-artifacts.evt.>");
    expect(quoted(natsConfForPrefix(conf, "troupe-staging"))).toContain("troupe-staging.evt.>");
  });
});

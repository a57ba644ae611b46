// After killing a member, fire CONSUMER.CREATE (R1 mem, like ordered) and STREAM.INFO every 300 ms with a 1 s timeout, to see which fail when.
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { nanos, nuid } from "@nats-io/nats-core";
import { connectAs } from "@troupe/events/node";
import { startTestCluster } from "../tests/harness/index.ts";
const KILL = process.argv[2] ?? "events";
const DUR = Number(process.argv[3] ?? 25000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cluster = await startTestCluster({ log: process.env.SLOG === "1" });
console.log("MY CLUSTER DIR", cluster.dataDir);
const cleanup = async () => { try { await cluster.stop(); } catch {} };
process.on("uncaughtException", async (e) => { console.log("uncaught", e); await cleanup(); process.exit(1); });
let tKill = 0;
try {
  await cluster.init();
  const names = cluster.nodes.map((n) => n.name);
  const short = (s?: string) => (s ? `n${names.indexOf(s)}` : "-");
  const jsz = async (i: number) => (await (await fetch(`${cluster.nodes[i]!.monitorUrl}/jsz`, { signal: AbortSignal.timeout(1000) })).json()) as any;
  const admin = await cluster.connect("master", "admin");
  const ajsm = await jetstreamManager(admin, { timeout: 1000, checkAPI: false });
  let meta = "";
  for (let i = 0; i < 3 && !meta; i++) try { meta = (await jsz(i)).meta_cluster?.leader; } catch {}
  const ev = short((await ajsm.streams.info("TROUPE_EVENTS")).cluster?.leader), hb = short((await ajsm.streams.info("TROUPE_HEARTBEATS")).cluster?.leader);
  const t = KILL === "meta" ? short(meta) : KILL === "hb" ? hb : ev;
  const target = Number(t.slice(1));
  const surv = [0, 1, 2].filter((i) => i !== target);
  console.log("leaders", { meta: short(meta), ev, hb }, "kill", t);
  let running = true;
  const worker = await cluster.connect("worker", "w");
  const wjs = jetstream(worker, { timeout: 2000 });
  for (let w = 1; w <= 3; w++) void (async () => { while (running) { wjs.publish(`troupe.hb.w${w}`, "{}").catch(() => {}); await sleep(500); } })();
  const mnc = await connectAs({ url: cluster.nodes[surv[0]!]!.url, role: "master", dataDir: cluster.dataDir, name: "m", env: {} });
  const jsm = await jetstreamManager(mnc, { timeout: 1000, checkAPI: false });
  const pub = jetstream(mnc, { timeout: 2000 });
  let k = 0;
  void (async () => { while (running) { pub.publish(`troupe.evt.job.j${k++}.submitted`, "{}").catch(() => {}); await sleep(500); } })();
  await sleep(2000);
  tKill = Date.now();
  await cluster.stopNode(target);
  const rows: string[] = [];
  const tl: Record<string, string> = { EV_info: "", EV_create: "", HB_info: "", HB_create: "" };
  const placed: Record<string, Record<string, number>> = {};
  const one = async (key: string, f: () => Promise<string>) => {
    try { const on = await f(); tl[key] += "."; if (on) { placed[key] ??= {}; placed[key]![on] = (placed[key]![on] ?? 0) + 1; } } catch (e) { tl[key] += (e as Error).message === "timeout" ? "x" : "E"; rows.push(`${key} ${(e as Error).message}`); }
  };
  let metaNow = "";
  const metaTl: string[] = [];
  while (Date.now() - tKill < DUR) {
    const ps = [];
    for (const [s, p, tag] of [["TROUPE_EVENTS", DeliverPolicy.All, "EV"], ["TROUPE_HEARTBEATS", DeliverPolicy.LastPerSubject, "HB"]] as const) {
      ps.push(one(`${tag}_info`, async () => short((await jsm.streams.info(s)).cluster?.leader)));
      const cfg: any = { name: `${nuid.next()}_1`, deliver_policy: p, ack_policy: AckPolicy.None, inactive_threshold: nanos(60_000), num_replicas: 1, max_deliver: 1, mem_storage: true };
      if (p === DeliverPolicy.LastPerSubject) cfg.filter_subject = ">";
      ps.push(one(`${tag}_create`, async () => short((await jsm.consumers.add(s, cfg)).cluster?.leader)));
    }
    try { const m = short((await jsz(surv[0]!)).meta_cluster?.leader); if (m !== metaNow) { metaTl.push(`${((Date.now() - tKill) / 1000).toFixed(1)}s meta=${m}`); metaNow = m; } } catch {}
    await Promise.all(ps);
    await sleep(200);
  }
  running = false;
  console.log("one char per ~1.2s-or-less round: . ok, x timeout");
  for (const [key, v] of Object.entries(tl)) console.log(key.padEnd(10), v, JSON.stringify(placed[key] ?? {}));
  console.log(metaTl.join(", "));
  console.log([...new Set(rows)].join("\n"));
  await mnc.close();
} finally { await cleanup(); }
process.exit(0);

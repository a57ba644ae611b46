import { readFileSync } from "node:fs";
import { createEvent, encodeEvent, subjects } from "@troupe/events";
import { freePort } from "@troupe/events/node";
import { startTestNats } from "@troupe/tests/harness";
import { spawnChild } from "../services/master/test/helpers.ts";
import type { Bench } from "./report.ts";

/**
 * Scale: a large pool of simulated workers heartbeating into TROUPE_HEARTBEATS
 * while a real master (`troupe master`, its own process) folds them. The
 * master's processing lag (now − the heartbeat's server timestamp when it is
 * folded) and processed count come from its GET /metrics, its RSS from /proc.
 * Then the offered rate is stepped up to find the highest one it keeps up with.
 */

const metric = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN) / 1024;

export const bench: Bench = async (o) => {
  const workers = o.size ?? (o.quick ? 500 : 10_000);
  const intervalMs = o.quick ? 1000 : 5000;
  const seconds = o.quick ? 2 : 20;
  const steps = o.quick ? [1_000, 2_000] : [2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000];
  const stepSeconds = o.quick ? 1 : 5;
  const nats = await startTestNats({ init: true });
  const port = await freePort();
  const master = spawnChild(["bin/troupe.mjs", "master"], {
    ...nats.env(), TROUPE_MASTER_ID: "bench-scale", TROUPE_MASTER_PORT: String(port), TROUPE_HEARTBEAT_MS: String(intervalMs), TROUPE_LOG_LEVEL: "warn",
  });
  const url = `http://127.0.0.1:${port}/metrics`;
  const pub = await nats.connect("worker", "bench-heartbeats");
  // One encoded heartbeat per worker; the time is patched per send (the master uses the server timestamp anyway).
  const template = (i: number) => encodeEvent(createEvent("worker.heartbeat", {
    workerId: `sim-${i}`, instanceId: `i-sim-${i}`, status: "online", currentJobs: 0, maxConcurrentJobs: 4, jobIds: [],
    metrics: { memoryUsage: 512, cpuUsage: 12.5, diskUsage: 40, networkUsage: 1.5, jobsCompleted: 0, jobsFailed: 0, averageResponseTime: 0 },
    performance: { successRate: 100, averageJobDuration: 0 },
  }, `sim-${i}`));
  const bodies = Array.from({ length: workers }, (_, i) => template(i));
  const hbSubjects = Array.from({ length: workers }, (_, i) => subjects.heartbeat(`sim-${i}`));
  let cursor = 0;
  let published = 0;

  /** Offers `rate` heartbeats/s for `secs`, sampling the master's lag; returns the samples. */
  async function offer(rate: number, secs: number) {
    const lags: number[] = [];
    const rss: number[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        try {
          const text = await (await fetch(url)).text();
          lags.push(metric(text, "troupe_master_heartbeat_lag_seconds") * 1000);
          rss.push(rssMb(master.proc.pid as number));
        } catch (e) {
          o.log(`scale: metrics unavailable: ${(e as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    const start = performance.now();
    const first = published;
    const total = Math.round(rate * secs);
    while (published - first < total) {
      const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate));
      for (; published - first < due; published++) {
        const i = cursor++ % workers;
        pub.publish(hbSubjects[i] as string, bodies[i] as Uint8Array);
      }
      await pub.flush();
      await new Promise((r) => setTimeout(r, 5));
    }
    const achieved = total / ((performance.now() - start) / 1000);
    // Let the master finish what was offered, then read how far behind it was.
    const deadline = Date.now() + 5000;
    let processed = 0;
    while (Date.now() < deadline) {
      processed = metric(await (await fetch(url)).text(), "troupe_master_heartbeats_total");
      if (processed >= published) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    sampling = false;
    await sampler;
    return { lags, rss, achieved, processed };
  }

  const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(url)).ok) break;
      } catch (e) {
        if (i > 600) throw new Error(`master metrics never came up: ${(e as Error).message}\n${master.output()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const rate = (workers * 1000) / intervalMs;
    o.log(`scale: ${workers} workers every ${intervalMs} ms = ${rate} heartbeats/s for ${seconds} s`);
    const base = await offer(rate, seconds);
    const baseOk = base.processed >= published;
    let best = 0;
    const stepNotes: string[] = [];
    for (const r of steps) {
      const s = await offer(r, stepSeconds);
      const maxLag = Math.max(...s.lags);
      const ok = maxLag < 1000 && s.processed >= published && s.achieved >= r * 0.9;
      stepNotes.push(`${r}/s offered (${s.achieved.toFixed(0)} achieved): max lag ${maxLag.toFixed(0)} ms, ${ok ? "kept up" : "fell behind"}`);
      o.log(`scale: ${stepNotes.at(-1)}`);
      if (!ok) break;
      best = r;
    }
    return {
      bench: "scale",
      params: { workers, intervalMs, offeredRate: rate, seconds, ...(o.size !== undefined ? { size: o.size } : {}) },
      figures: [
        { name: `processing lag p99 @${rate}/s`, value: pct(base.lags, 99), unit: "ms" },
        { name: `processing lag max @${rate}/s`, value: Math.max(...base.lags), unit: "ms", target: "< 1000" },
        { name: "master RSS max", value: Math.max(...base.rss), unit: "MB", target: "< 500" },
        { name: "heartbeats folded", value: base.processed, unit: "msgs" },
        { name: "highest rate kept up (lag < 1 s)", value: best, unit: "heartbeats/s" },
      ],
      notes: [
        ...(baseOk ? [] : [`the master folded ${base.processed} of ${published} heartbeats within 5 s of the end`]),
        ...stepNotes,
        "lag is sampled from /metrics every 200 ms (the last heartbeat's age when folded); the step-up stops at the first rate it cannot keep up with, or that one publisher cannot offer",
      ],
    };
  } finally {
    await pub.close();
    await master.stop();
    await nats.stop();
  }
};

import { cpus, loadavg } from "node:os";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { createEvent, decodeCommand, decodeEvent, jobSpecFromSubmit, newId, type TroupeEvent } from "@troupe/events";
import { connectAs, publishEvent, storeNames } from "@troupe/events/node";
import { startTestNats, type TestNats } from "@troupe/tests/harness";
import { processCpuMicros, serverMessages } from "./dispatch.ts";
import type { Bench, BenchReport } from "./report.ts";

/**
 * An experiment, not Troupe's flow: what the same no-op jobs would cost if
 * workers took them from a JetStream work queue instead of being assigned by
 * the master (the design option issue #7's goal would need; see
 * docs/benchmarks.md). Same shape as `bench dispatch` (jobs, workers ×
 * slots, submissions in flight), same server, same event log:
 *
 * - a client appends `job.submitted` itself (validated, de-duplicated);
 * - one durable pull consumer on `troupe.evt.job.*.submitted`, shared by
 *   every worker, is the queue: a delivery is the assignment, its ack wait
 *   the lease (a real design would renew it with in-progress acks, count
 *   attempts with max_deliver and order priorities with a subject each);
 * - each worker appends `job.started` and `job.completed`, then acks;
 * - an observer folds the whole log through an ordered consumer, decoding and
 *   validating every event, as a master would still do for liveness and
 *   recovery.
 *
 * So a job is 3 appends and no request-reply; nothing here decides by
 * priority, load or browser, fences attempts by epoch or recovers a job
 * (what the master does today). Workers append as the worker role and take
 * jobs through a second connection as the master role (whose permissions
 * cover consumers); a real design would give workers one connection.
 */

export const bench: Bench = async (o) => {
  const jobs = o.size ?? (o.quick ? 500 : 20_000);
  const nWorkers = o.quick ? 10 : 50;
  const slots = 10;
  const inFlight = 256;
  // TROUPE_BENCH_WQ_NO_STARTED=1: no job.started either (2 appends per job: the least a log of jobs can hold).
  const withStarted = process.env.TROUPE_BENCH_WQ_NO_STARTED !== "1";
  const perJob = withStarted ? 3 : 2;
  const nats: TestNats = await startTestNats({ init: true });
  const names = storeNames();
  const conns: NatsConnection[] = [];
  const connect = async (name: string, role: "master" | "worker" = "master") => {
    const nc = await connectAs({ url: nats.url, role, dataDir: nats.dataDir, name, env: {}, noAsyncTraces: true });
    conns.push(nc);
    return nc;
  };
  try {
    const admin = await connect("wq-admin");
    await (await jetstreamManager(admin)).consumers.add(names.events, {
      durable_name: "wq-bench", filter_subject: "troupe.evt.job.*.submitted", ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All, ack_wait: 60_000_000_000, max_ack_pending: nWorkers * slots,
    });

    const completed = new Map<string, number>();
    const errors: string[] = [];
    // Workers: take a job, append started and completed, ack the delivery.
    for (let i = 0; i < nWorkers; i++) {
      // Takes jobs as the master role (its permissions cover consumers), appends as a worker.
      const js = jetstream(await connect(`wq-worker-${i}`, "worker"));
      const workerId = `wq-${i}`;
      const consumer = await jetstream(await connect(`wq-taker-${i}`)).consumers.get(names.events, "wq-bench");
      const run = async (m: JsMsg) => {
        const d = decodeEvent(m.subject, m.data);
        if (!d.ok || d.value.type !== "job.submitted") {
          errors.push(d.ok ? d.value.type : d.error.message);
          return m.term();
        }
        const jobId = d.value.data.jobId;
        const attempt = m.info.deliveryCount;
        if (withStarted) await publishEvent(js, createEvent("job.started", { jobId, workerId, attempt }, workerId) as TroupeEvent);
        await publishEvent(js, createEvent("job.completed", {
          jobId, workerId, attempt,
          result: { success: true, data: {}, dataExtracted: 0, screenshots: [], logs: [] },
          metrics: { totalDuration: 0, responseTime: 0, memoryUsed: 0 },
        }, workerId) as TroupeEvent);
        m.ack();
        completed.set(jobId, performance.now());
      };
      await consumer.consume({ max_messages: slots, callback: (m) => void run(m).catch((e: Error) => errors.push(e.message)) });
    }

    // The observer: every event of the log decoded and validated, as a master's fold would read it.
    const observer = await connect("wq-observer");
    let folded = 0;
    let invalid = 0;
    const ordered = await jetstream(observer).consumers.get(names.events);
    await ordered.consume({ callback: (m) => {
      if (decodeEvent(m.subject, m.data).ok) folded++;
      else invalid++;
    } });

    const client = await connect("wq-client");
    const cjs = jetstream(client);
    const submitOne = async (i: number) => {
      const cmd = decodeCommand("jobs.submit", JSON.stringify({ url: `https://example.com/noop/${i}`, tags: ["bench"] }));
      if (!cmd.ok) throw new Error(`work-queue bench: invalid submission: ${cmd.error.message}`);
      const jobId = newId("j");
      await publishEvent(cjs, createEvent("job.submitted", { jobId, spec: jobSpecFromSubmit(cmd.value), submittedBy: "bench" }, "wq-client") as TroupeEvent);
    };

    o.log(`work-queue (experiment): ${jobs} jobs, ${nWorkers} workers × ${slots} slots`);
    const serverPid = nats.server.process.pid as number;
    const nats0 = processCpuMicros(serverPid);
    const own0 = process.cpuUsage();
    const msgs0 = await serverMessages(nats.monitorUrl);
    const t0 = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: inFlight }, async () => {
      while (next < jobs) await submitOne(next++);
    }));
    const deadline = Date.now() + 600_000;
    while (completed.size < jobs) {
      if (errors.length) throw new Error(`work-queue bench: ${errors.slice(0, 3).join("; ")}`);
      if (Date.now() > deadline) throw new Error(`work-queue bench: ${completed.size} of ${jobs} jobs completed in 10 minutes`);
      await new Promise((r) => setTimeout(r, 5));
    }
    const lastCompleted = Math.max(...completed.values());
    // The clock stops when the observer has folded every event (what a master or the UI knows), and its catching up is counted.
    while (folded + invalid < perJob * jobs) {
      if (Date.now() > deadline) throw new Error(`work-queue bench: the observer folded ${folded} of ${perJob * jobs} events in 10 minutes`);
      await new Promise((r) => setTimeout(r, 5));
    }
    const last = performance.now();
    const own = process.cpuUsage(own0);
    const natsCpu = (processCpuMicros(serverPid) - nats0) / jobs;
    const msgs1 = await serverMessages(nats.monitorUrl);
    const jobsPerSec = jobs / ((last - t0) / 1000);
    const report: BenchReport = {
      bench: "work-queue",
      params: { jobs, workers: nWorkers, concurrency: slots, inFlight, experiment: true, appendsPerJob: perJob, ...(o.size !== undefined ? { size: o.size } : {}) },
      figures: [
        { name: "jobs/s (submit → every event folded), work-queue experiment", value: jobsPerSec, unit: "jobs/s" },
        { name: "jobs/s (submit → last job.completed stored)", value: jobs / ((lastCompleted - t0) / 1000), unit: "jobs/s" },
        { name: "nats-server CPU per job", value: natsCpu, unit: "µs" },
        { name: "clients + workers + observer CPU per job", value: (own.user + own.system) / jobs, unit: "µs" },
        { name: "messages into nats-server per job", value: (msgs1.in - msgs0.in) / jobs, unit: "msgs" },
        { name: "messages out of nats-server per job", value: (msgs1.out - msgs0.out) / jobs, unit: "msgs" },
        { name: "events folded by the observer per job", value: folded / jobs, unit: "events" },
      ],
      notes: [
        "an experiment, not Troupe's flow: workers take jobs from a durable pull consumer on the submitted subjects; no master decides (no priority, placement, epochs or recovery)",
        `all processes on ${cpus().length} cores: nats-server and this one (client, workers, observer); load average at the start ${loadavg()[0]?.toFixed(1)}`,
        ...(invalid ? [`the observer found ${invalid} invalid events`] : []),
      ],
    };
    return report;
  } finally {
    for (const nc of conns) await nc.close().catch(() => {});
    await nats.stop();
  }
};

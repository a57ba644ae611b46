import { spawnSync } from "node:child_process";
import { cpus, loadavg, release, totalmem } from "node:os";

/** The machine a benchmark run measured on; printed with every table. */
export interface MachineInfo {
  date: string;
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  os: string;
  node: string;
  natsServer: string;
  chromium: string;
  redisServer: string;
  /** 1-minute load average when the run started: a busy machine makes noisy figures. */
  loadAverage1m: number;
}

/** First line of `<binary> --version`, or a note saying why there is none. */
export function toolVersion(binary: string, args: readonly string[] = ["--version"]): string {
  const r = spawnSync(binary, args, { encoding: "utf8", timeout: 10_000 });
  if (r.error) return `not found (${binary})`;
  const line = `${r.stdout ?? ""}${r.stderr ?? ""}`.split("\n").find((l) => l.trim());
  return line?.trim() ?? `no version output (${binary})`;
}

/** "Redis server v=7.0.15 sha=… malloc=…" → "redis-server 7.0.15". */
export function redisVersion(): string {
  const v = toolVersion("redis-server");
  const m = /v=(\S+)/.exec(v);
  return m ? `redis-server ${m[1]}` : v;
}

export function chromiumPath(env: Record<string, string | undefined> = process.env): string {
  return env.TROUPE_CHROMIUM_PATH || "/usr/bin/chromium";
}

export function machineInfo(now = new Date()): MachineInfo {
  const c = cpus();
  return {
    date: now.toISOString(),
    cores: c.length,
    cpuModel: c[0]?.model.trim() ?? "unknown",
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${process.platform} ${release()}`,
    node: process.version,
    natsServer: toolVersion(process.env.TROUPE_NATS_SERVER ?? "nats-server"),
    chromium: toolVersion(chromiumPath()),
    redisServer: redisVersion(),
    loadAverage1m: Math.round((loadavg()[0] ?? 0) * 100) / 100,
  };
}

export function formatMachine(m: MachineInfo): string {
  return `${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, ${m.os}, Node ${m.node}, ${m.natsServer}, ${m.chromium}, ${m.redisServer}, load ${m.loadAverage1m} at start, ${m.date}`;
}

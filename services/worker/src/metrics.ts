import si from "systeminformation";
import type { Logger } from "@troupe/events/node";

/** One machine sample. memory in MiB (bytes ÷ 1024²), cpu/disk in %, network in Mbps (rx+tx). */
export interface MachineSample {
  cpuUsage: number;
  /** CPU % averaged over the last few samples: admission uses it so one busy moment refuses nothing. */
  cpuAverage: number;
  memoryUsage: number;
  memoryTotal: number;
  availableMemoryMb: number;
  memoryPercent: number;
  diskUsage: number;
  networkUsage: number;
  at: number;
}

const MB = 1024 * 1024;
const mb = (bytes: number) => (Number.isFinite(bytes) && bytes > 0 ? Math.round(bytes / MB) : 0);
const clampPct = (n: number) => (Number.isFinite(n) ? Math.min(100, Math.max(0, Math.round(n * 10) / 10)) : 0);

/** Disk usage changes slowly and `fsSize` runs `df`: it is sampled at most this often. */
const DISK_EVERY_MS = 60_000;

/**
 * Reads the machine through systeminformation. CPU and memory come from /proc
 * each time; disk (`df`) is refreshed every minute; network is the default
 * interface only (one `cat` per interface per call otherwise).
 */
class MachineReader {
  private disk: { use: number; at: number } | null = null;
  private iface: Promise<string> | null = null;

  async read(): Promise<Omit<MachineSample, "cpuAverage">> {
    this.iface ??= si.networkInterfaceDefault().catch(() => "");
    const iface = await this.iface;
    const [load, mem, disk, net] = await Promise.all([si.currentLoad(), si.mem(), this.diskUse(), iface ? si.networkStats(iface) : Promise.resolve([])]);
    // rx_sec/tx_sec are null or NaN on the first call for an interface.
    const rate = (v: number | null | undefined) => (typeof v === "number" && Number.isFinite(v) && v > 0 ? v : 0);
    const bytesPerSec = net.reduce((sum, n) => sum + rate(n.rx_sec) + rate(n.tx_sec), 0);
    return {
      cpuUsage: clampPct(load.currentLoad),
      memoryUsage: mb(mem.active),
      memoryTotal: mb(mem.total),
      availableMemoryMb: mb(mem.available),
      memoryPercent: clampPct((mem.active / mem.total) * 100),
      diskUsage: disk,
      networkUsage: Math.round(((bytesPerSec * 8) / 1e6) * 100) / 100,
      at: Date.now(),
    };
  }

  private async diskUse(): Promise<number> {
    if (this.disk && Date.now() - this.disk.at < DISK_EVERY_MS) return this.disk.use;
    const disks = await si.fsSize();
    // The root filesystem; the fullest one if "/" is not listed.
    const root = disks.find((d) => d.mount === "/") ?? [...disks].sort((a, b) => b.use - a.use)[0];
    this.disk = { use: clampPct(root?.use ?? 0), at: Date.now() };
    return this.disk.use;
  }
}

/**
 * Samples the machine in the background so a heartbeat or an assignment never
 * waits on systeminformation: readers get the last sample.
 */
export class MetricsSampler {
  private last: MachineSample | null = null;
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private readonly cpuWindow: number[] = [];
  private readonly reader = new MachineReader();

  constructor(private readonly everyMs: number, private readonly log: Logger) {}

  get latest(): MachineSample | null {
    return this.last;
  }

  /** Takes the first sample (so registration carries real values), then keeps sampling. */
  async start(): Promise<void> {
    await this.tick();
    this.timer = setInterval(() => void this.tick(), this.everyMs);
    this.timer.unref();
  }

  private tick(): Promise<void> {
    // A slow sample never stacks up behind another.
    if (this.inFlight) return this.inFlight;
    this.inFlight = this.reader.read()
      .then((s) => {
        this.cpuWindow.push(s.cpuUsage);
        if (this.cpuWindow.length > 3) this.cpuWindow.shift();
        const avg = this.cpuWindow.reduce((a, b) => a + b, 0) / this.cpuWindow.length;
        this.last = { ...s, cpuAverage: Math.round(avg * 10) / 10 };
      })
      .catch((e: Error) => this.log.warn({ err: e.message }, "metrics sample failed; keeping the previous one"))
      .finally(() => (this.inFlight = null));
    return this.inFlight;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

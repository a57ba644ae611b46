/**
 * What a job's egress proxy refused or could not reach, and which navigations failed, so that a failed navigation
 * is explained by what happened to *its* target: a refusal of another request at the same moment (a page polling a
 * private address) made a target that was down a final `ssrf`, and a refusal early in the job made any later error
 * page one (a review). Pure: job.ts feeds it, the steps read it.
 */
export interface EgressNote {
  seq: number;
  kind: "refused" | "failed";
  /** host:port, lower case, without IPv6 brackets. */
  target: string;
  why: string;
}

const KEPT = 200;
const DEFAULT_PORTS: Record<string, number> = { "http:": 80, "https:": 443, "ws:": 80, "wss:": 443 };

/** "host:port" of a URL as the egress proxy names its targets; undefined for one it never sees. */
export function targetOf(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  const port = u.port ? Number(u.port) : DEFAULT_PORTS[u.protocol];
  return port === undefined ? undefined : `${normalHost(u.hostname)}:${port}`;
}

/** The egress proxy's "host:port" (a CONNECT's authority keeps IPv6 brackets and case), normalised. */
export function normalTarget(target: string): string {
  const i = target.lastIndexOf(":");
  return i < 0 ? normalHost(target) : `${normalHost(target.slice(0, i))}${target.slice(i)}`;
}

const normalHost = (h: string) => h.replace(/^\[|\]$/g, "").toLowerCase();

export class EgressNotes {
  /** The job's egress proxy's marker (EgressProxy.marker); none without one. */
  marker: string | undefined;
  private notes: EgressNote[] = [];
  private navigations: { seq: number; url: string }[] = [];
  private n = 0;
  /** The page's document is the egress proxy's own answer (a refusal or failure page), not the target's. */
  onFailurePage = false;

  /** A mark: `explain(mark)` reads only what was noted after it. */
  get seq(): number {
    return this.n;
  }

  note(kind: EgressNote["kind"], target: string, why: string): void {
    this.notes.push({ seq: ++this.n, kind, target: normalTarget(target), why });
    if (this.notes.length > KEPT) this.notes.shift();
  }

  /**
   * Whether a response is the egress proxy's own answer: its EGRESS_HEADER value names this job's marker, it came
   * over plain http (inside a tunnel the proxy answers nothing) and not from a service worker (which can send any
   * header). What it answered, else undefined.
   */
  ownAnswer(header: string | undefined, url: string, fromServiceWorker: boolean): "refused" | "failed" | undefined {
    if (header === undefined || this.marker === undefined || fromServiceWorker || !url.startsWith("http:")) return undefined;
    if (header === `refused ${this.marker}`) return "refused";
    if (header === `failed ${this.marker}`) return "failed";
    return undefined;
  }

  /** The page's own document arrived: `egressOwn` when it is the egress proxy's answer (ownAnswer). */
  documentArrived(url: string, egressOwn: boolean): void {
    this.onFailurePage = egressOwn;
    if (egressOwn) this.navigationFailed(url);
  }

  /** A navigation request (a page's or a frame's document) that failed: the last redirect's URL. */
  navigationFailed(url: string): void {
    this.navigations.push({ seq: ++this.n, url });
    if (this.navigations.length > KEPT) this.navigations.shift();
  }

  /**
   * Why a navigation begun at `mark` failed, if the egress proxy said: the last note about the target of the last
   * navigation that failed since (else of `url`, the one asked for).
   */
  explain(mark: number, url?: string): EgressNote | undefined {
    const failedNav = this.navigations.filter((x) => x.seq > mark).at(-1)?.url ?? url;
    const target = failedNav === undefined ? undefined : targetOf(failedNav);
    if (target === undefined) return undefined;
    return this.notes.filter((x) => x.seq > mark && x.target === target).at(-1);
  }
}

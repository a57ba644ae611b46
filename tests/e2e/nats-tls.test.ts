import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../harness/index.ts";
import { callApi, startStack, tail, type Stack } from "./stack.ts";

/**
 * The whole stack on a NATS server that takes only TLS (a private CA, as
 * `troupe nats --tls-self-signed` makes): master, projector, dashboard server
 * and a real worker connect with TROUPE_NATS_CA, and a job with a screenshot
 * (an object-store write) runs from submission to the read models.
 */

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ workers: 1, tls: true });
}, 300_000);

afterAll(async () => {
  await stack?.stop();
}, 60_000);

interface Conn {
  name: string;
  tls_version?: string;
}

describe("the stack over TLS", () => {
  it("runs a job end to end, and every service's connection is TLS", async () => {
    const url = `${stack.site.url}/product/4`;
    const r = await callApi(stack, "/api/jobs", {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ url, tags: ["tls"], scenario: { steps: [
        { type: "navigate", url }, { type: "extract", fields: { title: { selector: "h1.title" } } }, { type: "screenshot", label: "tls" },
      ] } }),
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const jobId = r.body.jobId as string;
    const job = await waitFor("the job completed in the read models", async () => {
      const j = (await callApi(stack, `/api/jobs/${jobId}`)).body.job as { status: string; result?: { data?: Record<string, unknown>; screenshots?: string[] } } | undefined;
      return j?.status === "completed" ? j : null;
    }, 90_000, 200).catch((e: Error) => {
      throw new Error(`${e.message}\nworker:\n${tail(stack, "worker-01")}\nmaster:\n${tail(stack, "master")}`);
    });
    expect(job.result?.data?.title).toBe("Headphones #4");
    expect(job.result?.screenshots?.length).toBe(1);
    // The worker wrote the screenshot to the object store, the dashboard server reads it back: both over TLS.
    const img = await fetch(`${stack.uiUrl}/artifacts/${job.result!.screenshots![0]}`);
    expect(img.status).toBe(200);
    expect(img.headers.get("content-type")).toBe("image/png");
    // Written by a worker, served to the dashboard's origin: never sniffed into something else, never run as a page.
    expect(img.headers.get("x-content-type-options")).toBe("nosniff");
    expect(img.headers.get("content-security-policy")).toBe("default-src 'none'; sandbox");

    const conns = ((await (await fetch(`${stack.nats.monitorUrl}/connz?limit=1000`)).json()) as { connections: Conn[] }).connections;
    const names = conns.map((c) => c.name);
    for (const want of [/^troupe-worker wn-e2e-01$/, /^troupe-projector$/, /^troupe-ui$/]) expect(names.some((n) => want.test(n)), names.join(", ")).toBe(true);
    // The master's connection is named by its id; every client connection of the server is TLS.
    expect(conns.length).toBeGreaterThanOrEqual(4);
    for (const c of conns) expect(c.tls_version, `${c.name} is not TLS`).toMatch(/^1\.[23]$/);
  }, 120_000);
});

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveMetricsHttp, type MetricsHttp } from "./metrics-http.ts";

let http: MetricsHttp;
let healthy = true;
let url: string;
beforeAll(async () => {
  http = await serveMetricsHttp({ host: "127.0.0.1", port: 0, metrics: () => "troupe_up 1\n", healthy: () => healthy, unhealthy: "catching up" });
  url = `http://127.0.0.1:${http.port}`;
});
afterAll(() => http?.close());

describe("serveMetricsHttp", () => {
  it("serves /metrics as Prometheus text, with or without a query string (the projector's answered 404 to /metrics?x=1), and HEAD", async () => {
    for (const path of ["/metrics", "/metrics?x=1"]) {
      const res = await fetch(url + path);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4");
      expect(await res.text()).toBe("troupe_up 1\n");
    }
    expect((await fetch(`${url}/metrics`, { method: "HEAD" })).status).toBe(200);
  });

  it("answers /healthz 200 when healthy, 503 with the given reason when not", async () => {
    expect(await (await fetch(`${url}/healthz?probe=1`)).text()).toBe("ok\n");
    healthy = false;
    const res = await fetch(`${url}/healthz`);
    healthy = true;
    expect([res.status, await res.text()]).toEqual([503, "catching up\n"]);
  });

  it("answers another method 405 with Allow, another path 404 naming the two", async () => {
    const post = await fetch(`${url}/metrics`, { method: "POST", body: "x" });
    expect([post.status, post.headers.get("allow")]).toEqual([405, "GET, HEAD"]);
    const nope = await fetch(`${url}/nope`);
    expect([nope.status, await nope.text()]).toEqual([404, "not found: GET /metrics or /healthz\n"]);
  });

  it("rejects with the listen error when the port is taken", async () => {
    await expect(serveMetricsHttp({ host: "127.0.0.1", port: http.port, metrics: () => "" })).rejects.toThrow(/EADDRINUSE/);
  });
});

import { describe, expect, it } from "vitest";
import { NavigationWatch } from "./navigation-watch.ts";

describe("NavigationWatch", () => {
  it("is settled at once with nothing loading", async () => {
    expect(await new NavigationWatch().settled(10_000)).toBe(true);
  });

  it("a load that finishes settles it; a redirect's next hop keeps it loading", async () => {
    const w = new NavigationWatch();
    const [hop, final] = [{}, {}];
    w.started(hop, "http://a/x");
    const settled = w.settled(10_000);
    // A redirect: one hop ends and the next starts in the same tick.
    w.ended(hop);
    w.started(final, "http://a/y");
    expect(w.inFlight).toBe(1);
    expect(w.latest).toBe("http://a/y");
    w.ended(final);
    expect(await settled).toBe(true);
  });

  it("an aborted load is over; a failed one waits for Chromium's error page", async () => {
    const w = new NavigationWatch();
    const [aborted, failed] = [{}, {}];
    w.started(aborted, "http://a/download");
    w.ended(aborted, "net::ERR_ABORTED");
    expect(w.inFlight).toBe(0);
    w.started(failed, "http://down/");
    w.ended(failed, "net::ERR_CONNECTION_REFUSED");
    expect(w.inFlight).toBe(1);
    w.committed("http://a/other");
    expect(w.inFlight).toBe(1);
    w.committed("chrome-error://chromewebdata/");
    expect(w.inFlight).toBe(0);
  });

  it("a commit ends the load of its own URL only (a load the new document began at once goes on)", () => {
    const w = new NavigationWatch();
    const [page, next] = [{}, {}];
    w.started(page, "http://a/page");
    w.started(next, "http://a/next");
    w.committed("http://a/page#top");
    expect(w.inFlight).toBe(1);
    expect(w.latest).toBe("http://a/next");
  });

  it("gives up after its time or when the job is aborted, with the load still under way", async () => {
    const w = new NavigationWatch();
    w.started({}, "http://slow/");
    expect(await w.settled(20)).toBe(false);
    const c = new AbortController();
    const p = w.settled(10_000, c.signal);
    c.abort();
    expect(await p).toBe(false);
  });
});

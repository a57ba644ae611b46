import { createLogger } from "@troupe/events/node";
import { processAlive, waitFor } from "@troupe/tests/harness";
import { afterAll, describe, expect, it } from "vitest";
import { BrowserPool } from "../src/browser-pool.ts";

const pool = new BrowserPool({ executablePath: process.env.TROUPE_CHROMIUM_PATH ?? "/usr/bin/chromium", recycleAfter: 2, log: createLogger("pool-test", "warn") });
afterAll(() => pool.close());

describe("BrowserPool", () => {
  it("gives each job a fresh context and recycles the browser after N contexts", async () => {
    await pool.start();
    const first = pool.activePid!;
    const a = await pool.acquire();
    const b = await pool.acquire();
    expect(a.context).not.toBe(b.context);
    expect(pool.openContexts).toBe(2);
    // The retiring browser keeps serving its open contexts; the next job gets a new browser.
    const c = await pool.acquire();
    expect(pool.activePid).not.toBe(first);
    expect(processAlive(first)).toBe(true);
    await a.release();
    await b.release();
    await waitFor("the retired browser to exit", () => !processAlive(first));
    await c.release();
    expect(pool.openContexts).toBe(0);
  });
});

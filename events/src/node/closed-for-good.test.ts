import { describe, expect, it } from "vitest";
import { closedForGoodMessage } from "./connect.ts";

const authError = (message: string) => Object.assign(new Error(message), { name: "AuthorizationError" });

describe("closedForGoodMessage", () => {
  it("says the credentials were refused, with the hint of the kind of user; a login timeout is no refusal; anything else is said plainly", () => {
    expect(closedForGoodMessage(authError("'Authorization Violation'"), "this worker's NATS user worker-w1", { perWorkerUser: true }))
      .toBe("NATS refused this worker's NATS user worker-w1, and the connection is closed for good: the user was removed (`troupe worker-user remove`), or its password changed; stopping");
    expect(closedForGoodMessage(authError("'Authorization Violation'"), "the master's NATS user"))
      .toBe("NATS refused the master's NATS user, and the connection is closed for good: its password changed (a new credentials.env); stopping");
    expect(closedForGoodMessage(authError("'Authentication Timeout'"), "the master's NATS user")).toMatch(/^NATS timed out the login of the master's NATS user twice \(a slow link, or this process stalled\)/);
    expect(closedForGoodMessage(new Error("connection refused"), "x")).toBe("NATS connection closed for good; stopping");
    expect(closedForGoodMessage(undefined, "x")).toBe("NATS connection closed for good; stopping");
  });
});

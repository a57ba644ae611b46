import { describe, expect, it } from "vitest";
import { inDeliveryOrder } from "./batcher.ts";

const d = (...seqs: number[]) => seqs.map((deliverySequence) => ({ info: { deliverySequence } }));

describe("inDeliveryOrder", () => {
  it("takes a batch that goes on from the expected delivery", () => {
    expect(inDeliveryOrder(d(1, 2, 3), 1)).toEqual({ count: 3, next: 4 });
    expect(inDeliveryOrder(d(7, 8), 7)).toEqual({ count: 2, next: 9 });
  });
  it("stops before a jump: what follows a lost delivery is not applied (nor acknowledged)", () => {
    expect(inDeliveryOrder(d(4, 5, 7, 8), 4)).toEqual({ count: 2, next: 6 });
    expect(inDeliveryOrder(d(9), 7)).toEqual({ count: 0, next: 7 });
  });
  it("an empty batch changes nothing", () => {
    expect(inDeliveryOrder([], 3)).toEqual({ count: 0, next: 3 });
  });
});

import { describe, expect, it } from "vitest";
import { formatLogLine } from "./processes.ts";

describe("formatLogLine", () => {
  it("makes pino JSON lines readable and passes other lines through", () => {
    expect(formatLogLine('{"level":30,"time":1,"pid":2,"hostname":"h","svc":"master","msg":"became leader","epoch":1}')).toBe("INFO became leader  epoch=1");
    expect(formatLogLine('{"level":40,"msg":"slow","ms":{"p99":3}}')).toBe('WARN slow  ms={"p99":3}');
    expect(formatLogLine("plain text")).toBe("plain text");
    expect(formatLogLine("{not json")).toBe("{not json");
  });
});

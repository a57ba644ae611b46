// Entry of the rebuild's writer thread: a worker thread does not inherit tsx's loader, so register it first.
import { register } from "tsx/esm/api";

register();
await import("./build-thread.ts");

// Test fixture for processes.test.ts: starts one managed child the way `troupe up` does, prints its pid, and waits to be killed.
import { startProcess } from "./processes.ts";

const m = startProcess("sleeper", process.execPath, ["-e", "setInterval(() => {}, 1000)"], process.env, () => {});
process.stdout.write(`child ${m.child.pid}\n`);
setInterval(() => {}, 1000);

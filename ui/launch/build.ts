import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { dieWithParent, pidAlive } from "@troupe/events/node";

/** The ui/ package directory and its adapter-node output. */
export const UI_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const BUILD_DIR = join(UI_DIR, "build");
export const BUILD_ENTRY = join(BUILD_DIR, "handler.js");
/** Where each running server keeps its own copy of the build (inside ui/, so the app's imports find ui/node_modules). */
const SERVE_DIR = join(UI_DIR, ".serve");

/** Sources the build depends on: the app, its config, the contract and the read models it bundles. */
const SOURCES = [
  join(UI_DIR, "src"),
  join(UI_DIR, "svelte.config.js"),
  join(UI_DIR, "vite.config.ts"),
  join(UI_DIR, "package.json"),
  join(UI_DIR, "..", "events", "src"),
  join(UI_DIR, "..", "services", "projector", "src"),
];

function newestMtime(path: string): number {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const e of readdirSync(path)) {
    if (e === "node_modules" || e.endsWith(".test.ts")) continue;
    newest = Math.max(newest, newestMtime(join(path, e)));
  }
  return newest;
}

/** Why the build must be (re)made, or null when ui/build is newer than every source. */
export function buildStaleness(): string | null {
  if (!existsSync(BUILD_ENTRY)) return "ui/build is missing";
  const built = statSync(BUILD_ENTRY).mtimeMs;
  const src = Math.max(...SOURCES.map(newestMtime));
  return src > built ? "sources changed since the last build" : null;
}

/**
 * Runs `svelte-kit sync` then `vite build` in ui/ (the same as `pnpm --filter @troupe/ui build`), streaming their
 * output. The sync first: vite reads ui/tsconfig.json, which extends the .svelte-kit/tsconfig.json the sync
 * writes, and a fresh clone's first build warned "Cannot find base config file" (a new user's walkthrough).
 */
export async function buildUi(log: (line: string) => void = (l) => console.error(l)): Promise<void> {
  await runInUi([join(UI_DIR, "node_modules", "@sveltejs", "kit", "svelte-kit.js"), "sync"], "svelte-kit sync", log);
  await runInUi([join(UI_DIR, "node_modules", "vite", "bin", "vite.js"), "build", "--logLevel", "warn"], "vite", log);
}

function runInUi(argv: string[], what: string, log: (line: string) => void): Promise<void> {
  return new Promise((res, rej) => {
    // Dies with us: a builder killed mid-way must not leave vite writing ui/build behind the next one's back.
    const [cmd, args] = dieWithParent(process.execPath, argv);
    const child = spawn(cmd, args, { cwd: UI_DIR, stdio: ["ignore", "pipe", "pipe"] });
    const feed = (b: Buffer) => b.toString("utf8").split("\n").filter(Boolean).forEach((l) => log(`[ui build] ${l}`));
    child.stdout.on("data", feed);
    child.stderr.on("data", feed);
    child.once("error", rej);
    child.once("exit", (code) => (code === 0 ? res() : rej(new Error(`ui build failed (${what} exit ${code}); run \`pnpm --filter @troupe/ui build\` to see why`))));
  });
}

const LOCK = join(UI_DIR, ".build-lock");

/**
 * One build at a time across processes (tests, `troupe ui`, `troupe up` may start together): mkdir is atomic.
 * The holder writes its pid into the lock; a lock whose holder is gone (a build killed mid-way; it used to hold
 * the next start for 5 minutes) is taken over at once, by one waiter only (an atomic rename); a live holder keeps
 * it, and a wait says whom it waits for.
 */
export async function withBuildLock<T>(run: () => Promise<T>, o: { lockDir?: string; log?: (line: string) => void } = {}): Promise<T> {
  const lock = o.lockDir ?? LOCK;
  const pidFile = join(lock, "pid");
  const holderOf = (): number => {
    try {
      return Number(readFileSync(pidFile, "utf8").trim()) || 0;
    } catch {
      return 0; // not written yet (or the lock just went)
    }
  };
  let told = false;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(pidFile, String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const age = Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      const holder = holderOf();
      // No pid yet: the holder is between mkdir and writing it (or died there); the age decides. A live holder keeps it.
      const gone = holder > 0 ? !pidAlive(holder) : age > 2000;
      if (gone) {
        // Taken over by one waiter only: whoever renames the stale lock away removes it; the others find it gone and race for mkdir.
        const aside = `${lock}.stale-${process.pid}-${Date.now()}`;
        try {
          renameSync(lock, aside);
        } catch {
          continue;
        }
        o.log?.(`troupe ui: took over the dashboard build lock ${lock} (its holder${holder ? ` pid ${holder}` : ""} is gone)`);
        rmSync(aside, { recursive: true, force: true });
        continue;
      }
      if (!told) o.log?.(`troupe ui: waiting for the dashboard build that pid ${holder || "?"} runs (lock ${lock})`);
      told = true;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    return await run();
  } finally {
    // Only our own lock: never one another process holds by now.
    if (holderOf() === process.pid) rmSync(lock, { recursive: true, force: true });
  }
}

/** Builds when missing or stale (waiting for a build another process runs); returns whether it built. */
export async function ensureUiBuild(log?: (line: string) => void): Promise<boolean> {
  if (!buildStaleness()) return false;
  const say = log ?? ((l: string) => console.error(l));
  return withBuildLock(async () => {
    const why = buildStaleness(); // another process may have just built it
    if (!why) return false;
    say(`troupe ui: building the dashboard (${why}) ...`);
    await buildUi(log);
    return true;
  }, { log: say });
}

/**
 * A private copy of the build for one server process. A server loads its pages' modules and serves their
 * client files lazily, from the build it started with: a rebuild of ui/build (another `troupe ui` after a
 * source change, `pnpm --filter @troupe/ui build`) replaced those files under it, and every page not loaded
 * yet answered 500 (ERR_MODULE_NOT_FOUND). Copied under the build lock, so never half-written; copies of
 * processes that are gone are removed first.
 */
export async function snapshotBuild(buildDir = BUILD_DIR): Promise<{ dir: string; entry: string; remove(): void }> {
  mkdirSync(SERVE_DIR, { recursive: true });
  for (const name of readdirSync(SERVE_DIR)) {
    const pid = Number(name.split("-")[0]);
    if (!(pid > 0) || (pid !== process.pid && !pidAlive(pid))) rmSync(join(SERVE_DIR, name), { recursive: true, force: true });
  }
  const dir = join(SERVE_DIR, `${process.pid}-${Date.now().toString(36)}`);
  await withBuildLock(async () => {
    if (!existsSync(join(buildDir, "handler.js"))) throw new Error(`${buildDir} holds no build: run \`pnpm --filter @troupe/ui build\` (or troupe ui without --no-build)`);
    cpSync(buildDir, dir, { recursive: true });
  });
  return { dir, entry: join(dir, "handler.js"), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

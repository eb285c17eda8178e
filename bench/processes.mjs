// The servers under test as child processes: `wrangler dev` and the Node baselines (bench/node-ws-*.mjs,
// PeerJS's server). Each runs in its own process group (wrangler starts workerd children), so
// stopping a server stops every process it started, and the group's CPU time and memory can be
// read from /proc.
//
// BENCH_SERVER_LOGS (a directory, optional): every server's output also goes to <name>-<pid>.log
// there, each chunk stamped with the seconds since this process started — the clock of the
// progress lines (report.mjs log) — so a server-side error can be matched to the step that
// caused it. Without it only the last 20 000 characters of each are kept, for error messages.
import { execFileSync, spawn } from "node:child_process";
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { sleep } from "./stats.mjs";

const ROOT = resolve(import.meta.dirname, "..");
const LOG_DIR = process.env.BENCH_SERVER_LOGS ? resolve(process.env.BENCH_SERVER_LOGS) : null;
const children = new Set();
const tempDirs = new Set();

/** Kills every child group and removes temp dirs. Synchronous, so it also works from 'exit'. */
export function killAllNow() {
  for (const child of children) {
    try { process.kill(-child.pid, "SIGKILL"); } catch { /* gone */ }
  }
  children.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

/**
 * Child processes die with this one, whatever ends the run: exit, a signal, or `hardLimitSeconds`
 * passing (a run stuck past any budget would otherwise hold its servers and ports forever).
 */
export function stopServersOnExit(what, hardLimitSeconds) {
  process.on("exit", killAllNow);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.on(sig, () => { console.error(`\n${sig}: stopping servers`); killAllNow(); process.exit(130); });
  }
  setTimeout(() => { console.error(`${what}: hard time limit reached, stopping`); killAllNow(); process.exit(1); }, hardLimitSeconds * 1000).unref();
}

/** SIGTERM to the group, then SIGKILL to whatever is left after `graceMs`. */
export async function stop(server, graceMs = 3_000) {
  const { child } = server;
  if (!children.has(child)) return;
  try { process.kill(-child.pid, "SIGTERM"); } catch { /* gone */ }
  const until = Date.now() + graceMs;
  while (Date.now() < until && groupPids(child.pid).length > 0) await sleep(50);
  try { process.kill(-child.pid, "SIGKILL"); } catch { /* gone */ }
  children.delete(child);
  for (const dir of server.tempDirs ?? []) { rmSync(dir, { recursive: true, force: true }); tempDirs.delete(dir); }
}

function track(name, command, args, env = {}) {
  const child = spawn(command, args, {
    cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], detached: true, env: { ...process.env, ...env },
  });
  children.add(child);
  let log = "";
  let file = null;
  if (LOG_DIR) {
    mkdirSync(LOG_DIR, { recursive: true });
    file = join(LOG_DIR, `${name.replace(/[^\w.]+/g, "-").replace(/-$/, "")}-${child.pid}.log`);
  }
  const keep = (d) => {
    log = (log + d).slice(-20_000);
    if (file) appendFileSync(file, `[${(performance.now() / 1000).toFixed(1)} s] ${d}`);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  return { child, log: () => log };
}

/** A free TCP port of 127.0.0.1. */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolvePort(port));
    });
    srv.on("error", reject);
  });
}

/** Starts one of the bench/ baselines; it prints {"port":N} when listening. */
export async function startBaseline(script, name = script) {
  const { child, log } = track(name, process.execPath, [join(ROOT, "bench", script)]);
  const port = await new Promise((resolvePort, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start:\n${log()}`)), 10_000);
    child.stdout.once("data", (d) => { clearTimeout(timer); resolvePort(JSON.parse(String(d).split("\n")[0]).port); });
    child.once("exit", (code) => reject(new Error(`${script} exited (${code}):\n${log()}`)));
  });
  return { name, child, log, url: `ws://127.0.0.1:${port}` };
}

/** Runs a command to completion; rejects with its output if it fails or takes over `timeoutMs`. */
function run(name, command, args, timeoutMs, env) {
  const { child, log } = track(name, command, args, env);
  return new Promise((resolveRun, reject) => {
    const timer = setTimeout(() => { try { process.kill(-child.pid, "SIGKILL"); } catch { /* gone */ } }, timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      children.delete(child);
      if (code === 0) resolveRun(log());
      else reject(new Error(`${command} ${args.join(" ")} failed (${code}):\n${log()}`));
    });
  });
}

/** Extracts commit `ref` of this repository into `into` (git archive: the repository is only
 * read), with the project's node_modules linked in, and returns `into`. */
function exportCommit(ref, into) {
  mkdirSync(into, { recursive: true });
  const tar = execFileSync("git", ["-C", ROOT, "archive", "--format=tar", ref], { maxBuffer: 1 << 30 });
  execFileSync("tar", ["-x", "-C", into], { input: tar });
  symlinkSync(join(ROOT, "node_modules"), join(into, "node_modules"));
  return into;
}

/** Which code a run measures: the commit, and how many files the working tree changes. */
export function sourceOf(ref) {
  const git = (...args) => { try { return execFileSync("git", ["-C", ROOT, ...args], { encoding: "utf8" }).trim(); } catch { return null; } };
  if (ref) return { built: `commit ${ref}`, commit: git("rev-parse", ref) };
  const changed = git("status", "--porcelain", "--untracked-files=no");
  return { built: "working tree", commit: git("rev-parse", "HEAD"), changedTrackedFiles: changed === null ? null : changed.split("\n").filter(Boolean).length };
}

const WRANGLER = join(ROOT, "node_modules/wrangler/bin/wrangler.js");
// X_LOCAL_OBSERVABILITY=false: wrangler dev otherwise streams a trace of every event to a collector
// Worker inside the measured runtime process (dev only; about 20 ms of CPU per call setup here,
// whatever the Worker). Off for every instance alike: this Worker, the platform floor, the counters.
const QUIET = { CI: "1", WRANGLER_SEND_METRICS: "false", X_LOCAL_OBSERVABILITY: "false" };

/**
 * Starts `wrangler dev` (local runtime, loopback, a free port, AUTH_SECRET set to `authSecret`,
 * Durable Objects persisted to a fresh temp dir that `stop` and `killAllNow` remove) on a snapshot
 * of the Worker — of the working tree, or of commit `ref` when given: it is bundled once up front (`wrangler deploy --dry-run --outdir`, the bundle a
 * deploy would upload) and served with `no_bundle` next to a copy of its static assets, so an edit
 * to the tree during the run does not reload the Worker and drop its streams and sockets. The config is the
 * project's wrangler.toml minus its [build] table, which builds the demo page's scripts (web/)
 * that the Worker under test does not use. `--log-level warn` drops wrangler's per-request log
 * lines, which the baselines do not pay for either.
 *
 * `wrapMain`, when given, turns the path of the Worker's entry module (and the text of the
 * Worker's wrangler config, for its bindings) into the source of an entry that wraps it
 * (billing.mjs counts requests that way); the wrapper is what gets bundled.
 *
 * `config`, when given ({ toml, dir }: a wrangler config's text and the directory its paths are
 * relative to), serves that Worker instead of this project's (floor-bench.mjs: the platform floor),
 * built and served the same way.
 *
 * `inspectorPort`, when given, is where wrangler dev's DevTools inspector listens (bench/viam-profile.mjs
 * records CPU profiles through it); otherwise wrangler picks one. `editToml`, when given, rewrites the
 * wrangler config's text before the build (the profile turns `minify` off, so functions keep their names).
 */
export async function startWrangler(authSecret, { ref = null, wrapMain = null, name = "wrangler dev", config = null, inspectorPort = null, editToml = (toml) => toml } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "edge-voice-bench-"));
  tempDirs.add(dir);
  const source = config ? config.dir : ref ? exportCommit(ref, join(dir, "src")) : ROOT;
  const project = editToml(config ? config.toml : readFileSync(join(source, "wrangler.toml"), "utf8"))
    .replace(/^\[build\][\s\S]*?(?=^\[|(?![\s\S]))/m, "")
    .replace(/^directory\s*=\s*"([^"]+)"/m, (_, p) => {
      // The static assets are watched too: serve a copy, so the snapshot holds for them as well.
      cpSync(resolve(source, p), join(dir, "assets"), { recursive: true });
      return `directory = ${JSON.stringify(join(dir, "assets"))}`;
    });
  let entry = resolve(source, /^main\s*=\s*"([^"]+)"/m.exec(project)[1]);
  if (wrapMain) {
    writeFileSync(join(dir, "entry.mjs"), wrapMain(entry, project));
    entry = join(dir, "entry.mjs");
  }
  const withMain = (main, extra = "") => project.replace(/^main\s*=.*$/m, `main = ${JSON.stringify(main)}${extra}`);
  writeFileSync(join(dir, "build.toml"), withMain(entry));
  await run(`${name} build`, process.execPath, [WRANGLER, "deploy", "--dry-run", "--config", join(dir, "build.toml"), "--outdir", join(dir, "bundle")], 120_000, QUIET);
  writeFileSync(join(dir, "dev.toml"), withMain(join(dir, "bundle", basename(entry).replace(/\.[^.]+$/, ".js")), "\nno_bundle = true"));

  const port = await freePort();
  const { child, log } = track(name, process.execPath, [WRANGLER, "dev",
    "--config", join(dir, "dev.toml"), "--port", String(port), "--ip", "127.0.0.1",
    "--persist-to", join(dir, "state"), "--var", `AUTH_SECRET:${authSecret}`,
    "--show-interactive-dev-session=false", "--log-level", "warn", ...(inspectorPort ? ["--inspector-port", String(inspectorPort)] : [])], QUIET);
  const server = { name, child, log, baseUrl: `http://127.0.0.1:${port}`, url: `ws://127.0.0.1:${port}`, source, tempDirs: [dir] };
  const until = Date.now() + 90_000;
  while (true) {
    if (child.exitCode !== null) { await stop(server); throw new Error(`${name} exited (${child.exitCode}):\n${log()}`); }
    if (Date.now() > until) { await stop(server); throw new Error(`${name} did not become healthy in 90 s:\n${log()}`); }
    try {
      const res = await fetch(`${server.baseUrl}/healthz`, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) break;
    } catch { /* not up yet */ }
    await sleep(250);
  }
  return server;
}

const CLOCK_TICKS = 100; // USER_HZ on Linux: /proc/<pid>/stat counts CPU time in 1/100 s

function groupPids(pgid) {
  const pids = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(entry);
    if (fields && Number(fields[2]) === pgid) pids.push(entry);
  }
  return pids;
}

function statFields(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which is in parentheses and may contain spaces.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

/** What a process of a server group is, for the CPU and memory breakdowns. */
function roleOf(pid) {
  let args = "";
  try { args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" "); } catch { return "gone"; }
  if (args.includes("workerd")) return args.includes("--inspector-addr") ? "workerd (Worker runtime)" : "workerd (wrangler dev proxy)";
  if (args.includes("wrangler")) return "wrangler (node)";
  if (args.includes("peerjs-server")) return "peer (node)";
  return "node";
}

/** `measure(pid)` summed over every live process of the server's group, in total and by role. */
function groupSum(server, measure) {
  const byRole = {};
  let total = 0;
  for (const pid of groupPids(server.child.pid)) {
    const value = measure(pid);
    if (value === null) continue;
    const role = roleOf(pid);
    byRole[role] = (byRole[role] ?? 0) + value;
    total += value;
  }
  return { total, byRole };
}

/** CPU time (ms, user + system) used so far by the server's group, in total and by process role. */
export function groupCpu(server) {
  return groupSum(server, (pid) => {
    const f = statFields(pid);
    return f ? ((Number(f[11]) + Number(f[12])) * 1000) / CLOCK_TICKS : null; // utime, stime (fields 14 and 15 of stat)
  });
}

/** Resident memory (KiB, VmRSS) of the server's group, in total and by process role. */
export function groupRss(server) {
  return groupSum(server, (pid) => {
    try { return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0); } catch { return null; }
  });
}

/** CPU time (ms) the whole machine has spent busy so far, all cores together (/proc/stat). */
export function machineBusyMs() {
  const [, ...fields] = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/);
  const [user, nice, system, , , irq, softirq, steal] = fields.map(Number);
  return ((user + nice + system + irq + softirq + steal) * 1000) / CLOCK_TICKS;
}

/** CPU used between two `groupCpu` readings, divided by `per` (calls, frames, or wall ms / 100 for %). */
export function cpuBetween(before, after, per = 1) {
  const byRole = {};
  for (const [role, ms] of Object.entries(after.byRole)) {
    const used = (ms - (before.byRole[role] ?? 0)) / per;
    if (used > 0) byRole[role] = Math.round(used * 100) / 100;
  }
  return { total: Math.round(((after.total - before.total) / per) * 100) / 100, byRole };
}

/** Waits (up to `maxMs`) until each server uses under `percent` % of a core, so one measurement's
 * backlog (an overloaded runtime still draining queued frames) does not bill the next one.
 * Returns the names of servers still busy when it gave up (none: settled). */
export async function settle(servers, { percent = 20, windowMs = 500, maxMs = 15_000 } = {}) {
  const until = Date.now() + maxMs;
  let busy = [];
  while (Date.now() < until) {
    const before = servers.map(groupCpu);
    await sleep(windowMs);
    busy = servers.filter((s, i) => ((groupCpu(s).total - before[i].total) / windowMs) * 100 >= percent).map((s) => s.name);
    if (busy.length === 0) return [];
  }
  return busy;
}

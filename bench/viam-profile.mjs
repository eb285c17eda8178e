// Where this Worker's Viam exchange spends its time against the Viam-shaped floor (issue 19 item 2):
// `node bench/viam-profile.mjs` starts this Worker (a commit, HEAD by default, built with `minify`
// off so functions keep their names) and the floor (bench/viam-floor/worker.js), each under its
// own wrangler dev with its DevTools inspector on, brings 20 machines × 2 Answer streams online on
// each (viam-floor-bench.mjs fleet, the same client as the comparison), and records a V8 CPU profile
// of the Worker runtime (the Worker and its Durable Objects share one isolate) over
// - `calls` calls one at a time, and
// - `seconds` s of `inFlight` calls at a time.
// It prints, for each, the runtime's JS time per setup split by bundle module (esbuild's
// `// path` markers in the unminified bundle) and the top functions by self time, and writes the
// profiles and the summary to PROFILE_OUT (default: a temp dir) for DevTools.
//
// Environment: PROFILE_REF (HEAD), PROFILE_CALLS (200), PROFILE_IN_FLIGHT (40), PROFILE_S (4),
// PROFILE_OUT. Loopback only; wrangler dev, not Cloudflare's edge.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import WebSocket from "ws";
import { fleet, latency, startViamFloor } from "./viam-floor-bench.mjs";
import { cpuBetween, groupCpu, settle, startWrangler, stop, stopServersOnExit } from "./processes.mjs";
import { loadProtos } from "./protos.mjs";
import { log, table } from "./report.mjs";
import { round, sleep } from "./stats.mjs";

const ROOT = resolve(import.meta.dirname, "..");
const env = process.env;
const REF = execFileSync("git", ["-C", ROOT, "rev-parse", "--verify", `${env.PROFILE_REF ?? "HEAD"}^{commit}`], { encoding: "utf8" }).trim();
const CALLS = Number(env.PROFILE_CALLS ?? 200);
const IN_FLIGHT = Number(env.PROFILE_IN_FLIGHT ?? 40);
const SECONDS = Number(env.PROFILE_S ?? 4);
const OUT = resolve(env.PROFILE_OUT ?? mkdtempSync(join(tmpdir(), "viam-profile-")));
const SECRET = "bench-secret";
const unminified = (toml) => toml.replace(/^minify\s*=.*$/m, "minify = false");

/** A DevTools protocol session on wrangler dev's inspector. */
async function inspector(port) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { perMessageDeflate: false, maxPayload: 1 << 30 });
  await new Promise((ok, fail) => { ws.once("open", ok); ws.once("error", fail); });
  let id = 0;
  const waiting = new Map();
  ws.on("message", (data) => {
    const m = JSON.parse(data);
    if (m.id && waiting.has(m.id)) { waiting.get(m.id)(m); waiting.delete(m.id); }
  });
  const send = (method, params = {}) => new Promise((ok, fail) => {
    const n = ++id;
    waiting.set(n, (m) => (m.error ? fail(new Error(`${method}: ${JSON.stringify(m.error)}`)) : ok(m.result)));
    ws.send(JSON.stringify({ id: n, method, params }));
  });
  return { send, close: () => ws.close() };
}

/** The bundle's module markers (`// worker/app.ts`) by line: which module a line belongs to. */
function modulesOf(bundlePath) {
  const lines = readFileSync(bundlePath, "utf8").split("\n");
  const marks = [];
  lines.forEach((l, i) => { const m = /^\/\/ ((?:\.\.\/)*[\w@./-]+\.(?:ts|js|mjs|json))$/.exec(l); if (m) marks.push([i, m[1]]); });
  return (line) => {
    let lo = 0, hi = marks.length - 1, found = "(bundle prelude)";
    while (lo <= hi) { const mid = (lo + hi) >> 1; if (marks[mid][0] <= line) { found = marks[mid][1]; lo = mid + 1; } else hi = mid - 1; }
    return found.replace(/^(\.\.\/)+/, "").replace(/^node_modules\/(@[^/]+\/[^/]+|[^/]+)\/.*$/, "node_modules/$1");
  };
}

/** What a module is, for the coarse split: the library, the layer of ours, or the runtime. */
function groupOf(module) {
  if (/@connectrpc|@bufbuild/.test(module)) return "connect-es + protobuf-es (library)";
  if (/node_modules\/hono/.test(module)) return "hono (library)";
  if (/worker\/connect-mount|worker\/connect-errors|worker\/connect-context/.test(module)) return "our Connect mount (worker/connect-*.ts)";
  if (/worker\/rate-limit|worker\/auth|model\/token-bucket/.test(module)) return "auth + rate limit (worker/auth.ts, worker/rate-limit.ts)";
  if (/worker\//.test(module) || /client\//.test(module) || /codecs\//.test(module)) return "doors + spine client (worker/viam-signaling.ts, call-streams.ts, object-sockets.ts…)";
  if (/durable-objects\//.test(module) || /model\//.test(module)) return "objects + model (durable-objects/, model/)";
  if (/viam-floor\/worker\.js/.test(module)) return "the floor's worker.js";
  if (module === "(program)") return "(program): runtime outside JS";
  if (module === "(garbage collector)") return "(garbage collector)";
  if (/native|runtime/.test(module)) return "native / runtime APIs called from JS (fetch, WebSocket, streams, storage)";
  return "other";
}

/** Self time (ms) of a profile by module and by function; `bundleUrl` picks the Worker's frames. */
function summarize(profile, moduleOf) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000));
  const byModule = {}, byFunction = {};
  let total = 0, idle = 0;
  for (const [id, ms] of self) {
    const { callFrame: f } = nodes.get(id);
    if (f.functionName === "(idle)") { idle += ms; continue; }
    total += ms;
    const inBundle = /bundle/.test(f.url) || /index\.js$|worker\.js$/.test(f.url);
    const module = f.functionName.startsWith("(") ? f.functionName : inBundle ? moduleOf(f.lineNumber) : f.url ? `runtime: ${f.url.replace(/^.*\//, "")}` : "(native / runtime)";
    byModule[module] = (byModule[module] ?? 0) + ms;
    const fn = `${f.functionName || "(anonymous)"} ${module}:${f.lineNumber + 1}`;
    byFunction[fn] = (byFunction[fn] ?? 0) + ms;
  }
  const sorted = (o) => Object.entries(o).sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, round(v, 1)]);
  const byGroup = {};
  for (const [m, ms] of Object.entries(byModule)) byGroup[groupOf(m)] = (byGroup[groupOf(m)] ?? 0) + ms;
  return { busyMs: round(total, 1), idleMs: round(idle, 1), byGroup: sorted(byGroup), byModule: sorted(byModule), byFunction: sorted(byFunction).slice(0, 40) };
}

async function profiled(session, what, run) {
  await session.send("Profiler.enable");
  await session.send("Profiler.setSamplingInterval", { interval: 200 });
  await session.send("Profiler.start");
  const result = await run();
  const { profile } = await session.send("Profiler.stop");
  writeFileSync(join(OUT, `${what}.cpuprofile`), JSON.stringify(profile));
  return { profile, result };
}

async function main() {
  stopServersOnExit("viam-profile", 900);
  mkdirSync(OUT, { recursive: true });
  const [p1, p2] = [39229 + (process.pid % 500), 39829 + (process.pid % 500)];
  log(`starting this Worker at ${REF.slice(0, 7)} (minify off) and the Viam-shaped floor, inspectors on ${p1} and ${p2}`);
  const [ours, floor] = await Promise.all([
    startWrangler(SECRET, { ref: REF, inspectorPort: p1, editToml: unminified, name: "wrangler dev (profiled)" }),
    startViamFloor(SECRET, { inspectorPort: p2 }),
  ]);
  const protos = await loadProtos(ours.source);
  const summary = { ref: REF, calls: CALLS, inFlight: IN_FLIGHT, seconds: SECONDS, out: OUT };
  try {
    for (const [key, server, port, bundle] of [["ours", ours, p1, join(ours.tempDirs[0], "bundle", "index.js")], ["floor", floor, p2, join(floor.tempDirs[0], "bundle", "worker.js")]]) {
      const f = await fleet({ server, protos, secret: SECRET, machines: 20, label: `prof-${key}` });
      const session = await inspector(port);
      const moduleOf = modulesOf(bundle);
      try {
        await settle([server]);
        const seq = await profiled(session, `${key}-one-at-a-time`, async () => {
          const before = groupCpu(server);
          const r = await latency(f, CALLS);
          const sorted = [...r.candidate].sort((a, b) => a - b);
          return { n: sorted.length, median: round(sorted[Math.floor(sorted.length / 2)], 3), cpu: cpuBetween(before, groupCpu(server), sorted.length) };
        });
        const s1 = summarize(seq.profile, moduleOf);
        summary[`${key}OneAtATime`] = { ...seq.result, jsMsPerCall: round(s1.busyMs / seq.result.n, 3), ...s1 };
        log(`${key}, one at a time: ${seq.result.n} calls, median ${seq.result.median} ms, runtime JS ${summary[`${key}OneAtATime`].jsMsPerCall} ms/call, CPU/call ${JSON.stringify(seq.result.cpu)}`);
        await settle([server]);
        const load = await profiled(session, `${key}-loaded`, async () => {
          const before = groupCpu(server);
          let setups = 0;
          const end = performance.now() + SECONDS * 1000;
          await Promise.all(Array.from({ length: IN_FLIGHT }, async (_, k) => {
            while (performance.now() < end) { try { await f.dial(k); setups++; } catch { await sleep(10); } }
          }));
          return { setups, setupsPerSec: round(setups / SECONDS, 1), cpu: cpuBetween(before, groupCpu(server), Math.max(1, setups)) };
        });
        const s2 = summarize(load.profile, moduleOf);
        summary[`${key}Loaded`] = { ...load.result, jsMsPerSetup: round(s2.busyMs / Math.max(1, load.result.setups), 3), ...s2 };
        log(`${key}, ${IN_FLIGHT} in flight: ${load.result.setupsPerSec} setups/s, runtime JS ${summary[`${key}Loaded`].jsMsPerSetup} ms/setup, CPU/setup ${JSON.stringify(load.result.cpu)}`);
      } finally {
        session.close();
        await f.stop();
      }
    }
  } finally {
    await Promise.all([stop(ours), stop(floor)]);
  }
  writeFileSync(join(OUT, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);
  for (const key of ["oursLoaded", "floorLoaded", "oursOneAtATime", "floorOneAtATime"]) {
    const s = summary[key];
    const per = s.setups ?? s.n;
    const runtimeCpu = s.cpu.byRole["workerd (Worker runtime)"];
    console.log(`\n### ${key}: ${s.busyMs} ms of samples over ${per} setups (${round(s.busyMs / per, 3)} ms each, under the profiler; the runtime process used ${runtimeCpu} ms CPU per setup meanwhile)\n`);
    console.log(table(["part", "share of samples"], s.byGroup.map(([g, ms]) => [g, `${round((ms / s.busyMs) * 100, 1)} %`])));
    console.log("");
    console.log(table(["module", "ms/setup", "share"], s.byModule.slice(0, 18).map(([m, ms]) => [m, round(ms / per, 3), `${round((ms / s.busyMs) * 100, 1)} %`])));
    console.log(`\nTop functions (self):\n${table(["function", "ms/setup"], s.byFunction.slice(0, 20).map(([fn, ms]) => [fn, round(ms / per, 3)]))}`);
  }
  console.log(`\nProfiles and summary in ${OUT}`);
}

main().catch((err) => { console.error(err); process.exit(1); });

// `npm run bench`: this Worker under `wrangler dev` against plain Node `ws` baselines, against
// PeerJS's server and against the platform floor, in the same run on the same machine. Prints one
// table per benchmark and writes all results to bench/results.json:
//   - "signaling" and "audio": against the Node ws baselines (bench/signaling-bench.mjs,
//     bench/audio-bench.mjs);
//   - "peerjs" (bench/peerjs-bench.mjs): the offer → answer → candidate exchange against PeerJS,
//     RSS per idle connection (PeerJS peers; waiting Voice streams; waiting Viam Answer streams,
//     heartbeats-allowed; audio-relay sockets), and billed requests, rows and Durable Object active
//     seconds per call setup (counted on an instrumented instance, bench/billing.mjs);
//   - "floor" (bench/floor-bench.mjs, bench/floor/worker.js; run inside the PeerJS part): the same
//     exchange on a bare Worker + one Durable Object over hibernatable WebSockets, on its own
//     wrangler dev, beside ours and PeerJS (median and p99, ours/floor, ours/PeerJS);
//   - "viamfloor" (bench/viam-floor-bench.mjs, bench/viam-floor/worker.js): the Viam exchange
//     against the floor of its own shape, a bare Worker + one Durable Object per host serving
//     Call, Answer and CallUpdate over Connect, on its own wrangler dev, with the same client
//     (goutils' 2-answerer loop on 20 machines; Call → candidate → CallUpdate(done) → cancel):
//     median and p99 one at a time, calls/s at BENCH_VIAMFLOOR_STEPS in flight, CPU-ms per setup
//     by process, a plain GET /healthz through each Worker, ours/floor for each;
//   - "machines" (bench/machines-bench.mjs): call setups/s, errors and not_found per step against
//     20 machines holding goutils' 2 Viam Answer streams each, ramping the calls in flight, and
//     the knee;
//   - "idle" (bench/idle-bench.mjs): Durable Object active seconds, requests and WebSocket
//     messages per waiting Voice and Viam answerer over an idle window, and active seconds per
//     call setup, on its own counting instance.
//
// Numbers from `wrangler dev` on loopback measure the local runtime (workerd behind wrangler's
// dev proxy, local SQLite-backed Durable Objects) on this machine, not Cloudflare's edge: there,
// network paths, the placement of each Durable Object and the production runtime decide latency.
// What a run does show is the cost of this code and this runtime relative to a minimal server.
//
// Order: signaling, the PeerJS comparison (with the floor), the Viam-shaped floor, machines, idle, audio. The idle
// window overlaps nothing (it is wall time; load during it would be counted as activity). The
// audio ramp stays last: an overloaded runtime keeps draining queued frames for seconds after it,
// and nothing needs to wait for that.
//
// Environment (all optional): BENCH_CALLS (300) calls per signaling measurement,
// BENCH_CONCURRENCY (20), BENCH_PAIRS ("10,25,50,100,200,400") ramp steps, BENCH_STEP_S (5) per
// ramp step, BENCH_LATENCY_S (5), BENCH_THROUGHPUT_S (3), BENCH_BUDGET_S (175) soft limit on the
// Node ws comparisons, counted from the start of the run (server start included; the PeerJS
// comparison's, machines' and idle parts' time not), BENCH_PEERJS_CALLS (1000) calls per PeerJS
// (and floor) signalling measurement, BENCH_PEERJS_CONNECTIONS ("100,500,1000") memory ramp steps,
// BENCH_PEERJS_BUDGET_S (115) soft limit on the PeerJS comparison (its helper servers' start
// included), BENCH_MACHINES_STEPS ("20,40,80,160") calls in flight per step of the machines ramp,
// BENCH_MACHINES_STEP_S (3) per step, BENCH_VIAMFLOOR_CALLS (300) calls one at a time per server
// in the Viam-shaped floor comparison, BENCH_VIAMFLOOR_STEPS ("40") calls in flight per throughput
// step there, BENCH_VIAMFLOOR_STEP_S (6) per step and system, BENCH_VIAMFLOOR_ROUNDS (3) interleaved rounds
// each phase is split into (every system in turn in each), BENCH_VIAMFLOOR_EXPERIMENTS
// ("callObject,offerFirst,connectEs"; "" for none: the floor-shaped experiments, viam-floor-bench.mjs EXPERIMENTS), BENCH_IDLE_ANSWERERS (100) waiting answerers per door in the
// idle part, BENCH_IDLE_S (60) its idle window, BENCH_ONLY ("signaling", "peerjs", "machines",
// "viamfloor", "idle" or "audio", or several comma-separated; default all), BENCH_OUT (bench/results.json),
// BENCH_REF (a commit to build the Worker from instead of the working tree, e.g. HEAD; resolved
// once at the start, so the helper instances started later are built from the same commit),
// BENCH_SERVER_LOGS (a directory for every server's output, see processes.mjs), BENCH_DEBUG (print
// the wrangler dev log's tail when a benchmark fails).
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import os from "node:os";
import { join, resolve } from "node:path";
import { audioLatency, audioPingFloor, audioRamp, audioThroughput, baselineAudioSystem, FRAME_BYTES, workerAudioSystem } from "./audio-bench.mjs";
import { floorTable, peerjsTable, runPeerjsComparison } from "./peerjs-bench.mjs";
import { idleAnswerers, idleTable } from "./idle-bench.mjs";
import { machinesTable, machinesThroughput } from "./machines-bench.mjs";
import { EXPERIMENTS, startViamFloor, viamFloorComparison, viamFloorTable } from "./viam-floor-bench.mjs";
import { groupCpu, killAllNow, machineBusyMs, settle, sourceOf, startBaseline, startWrangler, stop, stopServersOnExit } from "./processes.mjs";
import { loadProtos } from "./protos.mjs";
import { comparisonTable, log, machine, show, table } from "./report.mjs";
import { httpFloor, signalingBaseline, signalingWorker } from "./signaling-bench.mjs";
import { round } from "./stats.mjs";

const ROOT = resolve(import.meta.dirname, "..");
const env = process.env;
const positive = (name, dflt) => { const v = Number(env[name] ?? dflt); if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number`); return v; };
const counts = (name, dflt) => (env[name] ?? dflt).split(",").map(Number).filter((n) => n > 0);
const config = {
  calls: positive("BENCH_CALLS", 300),
  concurrency: positive("BENCH_CONCURRENCY", 20),
  pairs: counts("BENCH_PAIRS", "10,25,50,100,200,400"),
  stepSeconds: positive("BENCH_STEP_S", 5),
  latencySeconds: positive("BENCH_LATENCY_S", 5),
  throughputSeconds: positive("BENCH_THROUGHPUT_S", 3),
  throughputWindow: 64,
  budgetSeconds: positive("BENCH_BUDGET_S", 175),
  only: env.BENCH_ONLY ?? "all",
  // Resolved once: every instance of the run (the helpers start minutes later) is built from the
  // same commit, even if the branch moves meanwhile.
  ref: env.BENCH_REF ? execFileSync("git", ["-C", ROOT, "rev-parse", "--verify", `${env.BENCH_REF}^{commit}`], { encoding: "utf8" }).trim() : null,
  peerjs: {
    calls: positive("BENCH_PEERJS_CALLS", 1000),
    connections: counts("BENCH_PEERJS_CONNECTIONS", "100,500,1000"),
    budgetSeconds: positive("BENCH_PEERJS_BUDGET_S", 115),
  },
  viamFloor: {
    calls: positive("BENCH_VIAMFLOOR_CALLS", 300),
    steps: counts("BENCH_VIAMFLOOR_STEPS", "40"),
    stepSeconds: positive("BENCH_VIAMFLOOR_STEP_S", 6),
    rounds: positive("BENCH_VIAMFLOOR_ROUNDS", 3),
    experiments: (env.BENCH_VIAMFLOOR_EXPERIMENTS ?? "callObject,offerFirst,connectEs").split(",").map((k) => k.trim()).filter(Boolean),
  },
  machines: {
    steps: counts("BENCH_MACHINES_STEPS", "20,40,80,160"),
    stepSeconds: positive("BENCH_MACHINES_STEP_S", 3),
  },
  idle: {
    answerers: positive("BENCH_IDLE_ANSWERERS", 100),
    idleSeconds: positive("BENCH_IDLE_S", 60),
  },
};
const PARTS = ["signaling", "peerjs", "viamfloor", "machines", "idle", "audio"];
const parts = new Set(config.only === "all" ? PARTS : config.only.split(",").map((p) => p.trim()));
for (const p of parts) if (!PARTS.includes(p)) throw new Error(`BENCH_ONLY: unknown part "${p}" (known: ${PARTS.join(", ")})`);
for (const k of config.viamFloor.experiments) if (!EXPERIMENTS[k]) throw new Error(`BENCH_VIAMFLOOR_EXPERIMENTS: unknown "${k}" (known: ${Object.keys(EXPERIMENTS).join(", ")})`);
const OUT = resolve(env.BENCH_OUT ?? join(ROOT, "bench/results.json"));
const AUTH_SECRET = "bench-secret";
const startedAt = performance.now();

stopServersOnExit("bench", (config.budgetSeconds + (parts.has("peerjs") ? config.peerjs.budgetSeconds : 0)) * 2 + 120 +
  (parts.has("viamfloor") ? config.viamFloor.steps.length * (config.viamFloor.stepSeconds + 20) * 2 + 300 : 0) +
  (parts.has("machines") ? config.machines.steps.length * (config.machines.stepSeconds + 20) + 120 : 0) +
  (parts.has("idle") ? config.idle.idleSeconds + 180 : 0));

// ---- tables ----------------------------------------------------------------------------------

function signalingTable(s) {
  const rows = [];
  if (s.worker.floor && s.baseline.floor) {
    rows.push(["empty HTTP request (Worker: GET /healthz; baseline: Node http 426): median ms", s.worker.floor.median, s.baseline.floor.median]);
    rows.push(["empty HTTP request: server CPU ms", s.worker.floor.serverCpuMsPerRequest, s.baseline.floor.serverCpuMsPerRequest]);
  }
  for (const [label, key] of [["sequential", "sequential"], [`${config.concurrency} in parallel`, "concurrent"]]) {
    const base = s.baseline[key];
    for (const door of ["viam", "voice"]) {
      const ours = s.worker[door]?.[key];
      if (!ours || !base) continue;
      const who = door === "viam" ? "host on Viam Answer" : "host on Voice Connect";
      const n = ours.n === base.n ? `${ours.n} calls` : `${ours.n} / ${base.n} calls`;
      rows.push([`Call→answer, ${label}, ${who} (${n}): median ms`, ours.median, base.median]);
      rows.push([`Call→answer, ${label}, ${who}: p99 ms`, ours.p99, base.p99]);
      rows.push([`Call→answer, ${label}, ${who}: mean ms`, ours.mean, base.mean]);
      rows.push([`calls/s, ${label}, ${who}`, ours.callsPerSec, base.callsPerSec, 1]);
      rows.push([`server CPU ms per call, ${label}, ${who}`, ours.serverCpuMsPerCall, base.serverCpuMsPerCall]);
    }
  }
  return `${comparisonTable("Signaling: Call→answer latency", "Node ws baseline", rows, "baseline")}\n\nOther processes on the machine used ${s.otherProcessesCpuPercent ?? "?"}% of one core meanwhile.`;
}

function audioTables(a) {
  const w = a.worker, b = a.baseline;
  const maxStep = config.pairs[config.pairs.length - 1];
  const limited = (r, key) => r?.steps.find((s) => s.pairs === r[key])?.clientLimited;
  const pairsShown = (r, key) => (r ? `${r[key]}${r[key] === maxStep ? " (top step)" : ""}${limited(r, key) ? " (client-limited)" : ""}` : undefined);
  const rows = [
    ["one-way frame latency, 1 call, 50 frames/s each way: median ms", w.latency?.latencyMs.median, b.latency?.latencyMs.median],
    ["one-way frame latency, 1 call: p99 ms", w.latency?.latencyMs.p99, b.latency?.latencyMs.p99],
    ["frames lost, 1 call", w.latency?.lost, b.latency?.lost, 0],
    [`throughput, 1 pair one way, unpaced (≤${config.throughputWindow} in flight): frames/s`, w.throughput?.framesPerSec, b.throughput?.framesPerSec, 0],
    ["server CPU ms per 1000 frames relayed (throughput run)", w.throughput?.serverCpuMsPer1000Frames, b.throughput?.serverCpuMsPer1000Frames, 0],
    ["floor: keep-alive ping→pong, 1 socket, unpaced: round trips/s", w.pingFloor?.pongsPerSec, b.pingFloor?.pongsPerSec, 0],
    ["floor: server CPU ms per 1000 ping→pong (Worker: answered by the runtime, no JS)", w.pingFloor?.serverCpuMsPer1000Pongs, b.pingFloor?.serverCpuMsPer1000Pongs, 0],
    [`concurrent calls in one room: zero loss, p99 < 2× the ${config.pairs[0]}-call p99`, w.ramp?.maxPairsPrimary, b.ramp?.maxPairsPrimary, 0,
      pairsShown(w.ramp, "maxPairsPrimary"), pairsShown(b.ramp, "maxPairsPrimary")],
    ["concurrent calls in one room: zero loss, p99 < 20 ms (one frame)", w.ramp?.maxPairsAbsolute, b.ramp?.maxPairsAbsolute, 0,
      pairsShown(w.ramp, "maxPairsAbsolute"), pairsShown(b.ramp, "maxPairsAbsolute")],
    [`p99 ms at ${config.pairs[0]} calls`, w.ramp?.p99AtFirstStepMs, b.ramp?.p99AtFirstStepMs],
  ];
  const main = comparisonTable(`Audio relay: 20 ms frames of 48 kHz 16-bit mono (${FRAME_BYTES} bytes with header)`, "Node ws baseline", rows, "baseline");
  const cell = (s) => (!s ? ["—", "—", "—"] : s.error ? ["connect failed", "—", "—"]
    : [s.lost, `${show(s.latencyMs.median)} / ${show(s.latencyMs.p99)}${s.clientLimited ? " (client-limited)" : ""}`, s.serverCpuPercent]);
  const steps = config.pairs.map((k) => [k, w.ramp?.steps.find((s) => s.pairs === k), b.ramp?.steps.find((s) => s.pairs === k)])
    .filter(([, ws, bs]) => ws || bs).map(([k, ws, bs]) => [k, k * 100, ...cell(ws), ...cell(bs)]);
  const ramp = [`\n### Audio relay ramp: K calls in one room, 50 frames/s each way per call, ${config.stepSeconds} s per step\n`,
    table(["calls", "frames/s offered", "Worker: lost", "Worker: median / p99 ms", "Worker: server CPU %", "baseline: lost", "baseline: median / p99 ms", "baseline: server CPU %"], steps),
    "\nServer CPU % is of one core, summed over the server's processes (for wrangler dev: its Node process and both workerd processes).",
    `Other processes on the machine used ${a.otherProcessesCpuPercent ?? "?"}% of one core meanwhile.`];
  return `${main}\n${ramp.join("\n")}`;
}

// ---- the run -----------------------------------------------------------------------------------

/**
 * The % of one core that processes other than `servers` and this one use while the meter runs.
 * Everything else the machine runs meanwhile competes for its cores: measured, so a run on a busy
 * machine says so in its results. `pause()` leaves a stretch out (the PeerJS comparison, whose
 * helper servers come and go: their CPU would read as another process's once they are gone).
 * Null when it ran under 5 s: /proc/stat counts in 10 ms ticks, too coarse for less.
 */
function otherCpuMeter(servers) {
  const ownCpuMs = () => servers.reduce((sum, s) => sum + groupCpu(s).total, 0) + process.cpuUsage().user / 1000 + process.cpuUsage().system / 1000;
  const reading = () => ({ busy: machineBusyMs(), own: ownCpuMs(), at: performance.now() });
  let busy = 0, own = 0, wallMs = 0, from = reading();
  const meter = {
    pause() {
      const r = reading();
      busy += r.busy - from.busy; own += r.own - from.own; wallMs += r.at - from.at;
      from = null;
    },
    resume() { from = reading(); },
    percent() {
      if (from) { meter.pause(); meter.resume(); }
      return wallMs < 5_000 ? null : round(((busy - own) / wallMs) * 100, 0);
    },
  };
  return meter;
}

async function main() {
  const results = {
    note: "Numbers from wrangler dev on loopback measure the local runtime (workerd behind wrangler's dev proxy) on this machine, not Cloudflare's edge. Clients, servers and baselines share the machine's cores.",
    date: new Date().toISOString(), machine: machine(), source: sourceOf(config.ref), config, signaling: null, audio: null, peerjs: null, floor: null, viamFloor: null, machines: null, idle: null,
  };
  log(`machine: ${results.machine.cpuModel}, ${results.machine.cores} cores, node ${process.version}, wrangler ${results.machine.wrangler}, load ${results.machine.loadAverageAtStart.join(" ")}`);
  log(`starting wrangler dev (${results.source.built})${parts.has("signaling") || parts.has("audio") ? " and the Node ws baselines" : ""}`);
  const [worker, signalingBase, relayBase] = await Promise.all([
    startWrangler(AUTH_SECRET, { ref: config.ref }),
    parts.has("signaling") ? startBaseline("node-ws-signaling.mjs") : null,
    parts.has("audio") ? startBaseline("node-ws-relay.mjs") : null,
  ]);
  const protos = await loadProtos(worker.source);
  const servers = [worker, signalingBase, relayBase].filter(Boolean);
  log(`wrangler dev on ${worker.baseUrl}${servers.length > 1 ? `; baselines on ${servers.slice(1).map((s) => s.url).join(" and ")}` : ""}`);
  const otherDuringRun = otherCpuMeter(servers);
  const cpuOf = (server) => () => groupCpu(server);
  const quiet = async () => {
    const busy = await settle(servers);
    if (busy.length) log(`  (${busy.join(", ")} still busy after 15 s; measuring anyway)`);
  };
  // The budget is shared out from what is left once the servers are up; the PeerJS comparison
  // has its own, and it and the other fixed-length parts (machines, idle) do not count against it.
  let asideMs = 0;
  const aside = async (run) => { const t0 = performance.now(); try { return await run(); } finally { asideMs += performance.now() - t0; } };
  const phaseStart = performance.now();
  const budgetLeft = () => config.budgetSeconds * 1000 - (performance.now() - startedAt - asideMs);
  const signalingShare = !parts.has("signaling") ? 0 : parts.has("audio") ? 0.55 : 1;
  const signalingEnd = phaseStart + Math.max(0, budgetLeft()) * signalingShare;

  try {
    if (parts.has("signaling")) {
      const s = { worker: { viam: {}, voice: {} }, baseline: {} };
      const otherDuringSignaling = otherCpuMeter(servers);
      await quiet();
      log("empty HTTP request: this Worker, then the baseline");
      s.worker.floor = await httpFloor(`${worker.baseUrl}/healthz`, { requests: 200, cpu: cpuOf(worker) });
      s.baseline.floor = await httpFloor(signalingBase.url.replace(/^ws/, "http"), { requests: 200, cpu: cpuOf(signalingBase) });
      log(`  median ${s.worker.floor.median} ms (${s.worker.floor.serverCpuMsPerRequest} ms CPU) vs ${s.baseline.floor.median} ms (${s.baseline.floor.serverCpuMsPerRequest} ms CPU)`);
      const measurements = [["sequential", 1, 20], ["concurrent", config.concurrency, 2]].flatMap(([key, concurrency, warmup]) =>
        ["viam", "voice"].map((door) => ({ key, concurrency, warmup, door })));
      for (const [i, { key, concurrency, warmup, door }] of measurements.entries()) {
        // Each measurement of this Worker gets an equal share of the signaling time left.
        const deadline = performance.now() + (signalingEnd - performance.now()) / (measurements.length - i);
        await quiet();
        log(`signaling ${key}: this Worker, host on the ${door} door`);
        const r = s.worker[door][key] = await signalingWorker({ server: worker, secret: AUTH_SECRET, protos, door, concurrency, warmup, deadline, calls: config.calls, cpu: cpuOf(worker) });
        log(`  ${r.n} calls: median ${r.median} ms, p99 ${r.p99} ms, ${r.callsPerSec} calls/s, ${r.notFoundRetries} not_found retries, ${r.errors} errors; CPU ms/call ${JSON.stringify(r.serverCpuMsPerCallByProcess)}`);
        if (door === "viam") {
          await quiet();
          log(`signaling ${key}: Node ws baseline`);
          const b = s.baseline[key] = await signalingBaseline({ server: signalingBase, concurrency, warmup, deadline: Infinity, calls: config.calls, cpu: cpuOf(signalingBase) });
          log(`  ${b.n} calls: median ${b.median} ms, p99 ${b.p99} ms, ${b.callsPerSec} calls/s`);
        }
      }
      s.otherProcessesCpuPercent = otherDuringSignaling.percent();
      results.signaling = s;
      console.log(signalingTable(s));
    }

    if (parts.has("peerjs")) {
      const t0 = performance.now();
      otherDuringRun.pause();
      try {
        const { floor, ...peerjs } = await runPeerjsComparison({ server: worker, authSecret: AUTH_SECRET, protos, ref: config.ref, concurrency: config.concurrency, ...config.peerjs });
        results.peerjs = peerjs;
        results.floor = floor;
      } finally {
        otherDuringRun.resume();
        asideMs += performance.now() - t0;
      }
      console.log(peerjsTable(results.peerjs));
      console.log(floorTable(results.floor));
    }

    if (parts.has("viamfloor")) {
      await aside(async () => {
        log("starting the Viam-shaped floor (bench/viam-floor/worker.js) on its own wrangler dev");
        // The experiments beside it (viam-floor-bench.mjs EXPERIMENTS): the floor routed as the spine
        // routes a call, through a new object per call, and the same with the offer handed out first,
        // which say what that routing costs and what of it one change would win back.
        // One after another: wrangler dev instances started at once have collided on a port here.
        const floor = await startViamFloor(AUTH_SECRET);
        const experiments = [];
        for (const key of config.viamFloor.experiments) {
          experiments.push(await startViamFloor(AUTH_SECRET, { name: `wrangler dev (${EXPERIMENTS[key].label})`, shape: EXPERIMENTS[key].shapeVar }));
        }
        try {
          results.viamFloor = await viamFloorComparison({ ours: worker, floor, protos, secret: AUTH_SECRET, cpuOf, ...config.viamFloor,
            experiments: Object.fromEntries(config.viamFloor.experiments.map((key, i) => [key, experiments[i]])) });
        } finally {
          await Promise.all([floor, ...experiments].map((s) => stop(s)));
        }
      });
      console.log(viamFloorTable(results.viamFloor));
    }

    if (parts.has("machines")) {
      await aside(async () => {
        await quiet();
        log(`call setups/s: 20 machines × 2 Viam Answer streams, ${config.machines.steps.join(", ")} calls in flight, ${config.machines.stepSeconds} s each`);
        results.machines = await machinesThroughput({ server: worker, protos, secret: AUTH_SECRET, ...config.machines, cpu: cpuOf(worker) });
      });
      console.log(machinesTable(results.machines));
    }

    if (parts.has("idle")) {
      await aside(async () => {
        await quiet();
        results.idle = await idleAnswerers({ authSecret: AUTH_SECRET, protos, ref: config.ref, ...config.idle });
      });
      console.log(idleTable(results.idle));
    }

    if (parts.has("audio")) {
      const a = { worker: {}, baseline: {} };
      const otherDuringAudio = otherCpuMeter(servers);
      const systems = [["worker", workerAudioSystem(worker, AUTH_SECRET), worker], ["baseline", baselineAudioSystem(relayBase), relayBase]];
      for (const [key, system] of systems) {
        await quiet();
        log(`audio latency, 1 call: ${key}`);
        const r = a[key].latency = await audioLatency(system, { seconds: config.latencySeconds });
        log(`  median ${r.latencyMs.median} ms, p99 ${r.latencyMs.p99} ms, lost ${r.lost}`);
      }
      for (const [key, system, server] of systems) {
        await quiet();
        log(`audio throughput, 1 pair: ${key}`);
        const r = a[key].throughput = await audioThroughput(system, { seconds: config.throughputSeconds, window: config.throughputWindow, cpu: cpuOf(server) });
        log(`  ${r.framesPerSec} frames/s; CPU ms per 1000 frames ${JSON.stringify(r.serverCpuMsPer1000FramesByProcess)}`);
      }
      for (const [key, system, server] of systems) {
        await quiet();
        log(`keep-alive ping→pong, 1 socket: ${key}`);
        const r = a[key].pingFloor = await audioPingFloor(system, { seconds: 2, window: config.throughputWindow, cpu: cpuOf(server) });
        log(`  ${r.pongsPerSec} pongs/s; CPU ms per 1000 ${JSON.stringify(r.serverCpuMsPer1000PongsByProcess)}`);
      }
      // The baseline ramps first: an overloaded runtime keeps draining queued frames for seconds
      // after its ramp, and nothing needs to wait for that once it is the last measurement. The
      // baseline gets 60% of the time left; this Worker the rest, however much the baseline left.
      for (const [i, [key, system, server]] of [...systems].reverse().entries()) {
        await quiet();
        const deadline = performance.now() + Math.max(0, budgetLeft()) * (i === 0 ? 0.6 : 1);
        log(`audio ramp, calls in one room: ${key}`);
        const r = a[key].ramp = await audioRamp(system, { steps: config.pairs, seconds: config.stepSeconds, graceMs: 1_500, deadline, cpu: cpuOf(server) });
        for (const st of r.steps) {
          log(st.error ? `  ${st.pairs} calls: ${st.error}`
            : `  ${st.pairs} calls: lost ${st.lost}, p99 ${st.latencyMs.p99} ms, server CPU ${st.serverCpuPercent}% ${JSON.stringify(st.serverCpuPercentByProcess)}, client CPU ${st.clientCpuPercent}%, client send lag p99 ${st.clientSendLagMs.p99} ms`);
        }
        log(`  stopped: ${r.stoppedBy}`);
      }
      a.otherProcessesCpuPercent = otherDuringAudio.percent();
      results.audio = a;
      console.log(audioTables(a));
    }
  } catch (err) {
    if (env.BENCH_DEBUG) console.error(`--- wrangler dev log (tail) ---\n${worker.log().slice(-6000)}`);
    throw err;
  } finally {
    results.machine.loadAverageAtEnd = os.loadavg().map((l) => round(l, 2));
    results.machine.otherProcessesCpuPercent = otherDuringRun.percent();
    results.durationSeconds = round((performance.now() - startedAt) / 1000, 1);
    await Promise.all(servers.map((server) => stop(server)));
  }
  writeFileSync(OUT, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\n${results.machine.cpuModel}, ${results.machine.cores} cores, Node ${results.machine.node}, wrangler ${results.machine.wrangler}; ` +
    `load average ${results.machine.loadAverageAtStart.join(" ")} at start, ${results.machine.loadAverageAtEnd.join(" ")} at end; ` +
    `other processes used ${results.machine.otherProcessesCpuPercent ?? "?"}% of one core on average during the run${parts.has("peerjs") ? " (the PeerJS comparison left out)" : ""}; ` +
    `${results.source.built} (${results.source.commit?.slice(0, 7)}). Took ${results.durationSeconds} s. Wrote ${OUT}`);
  console.log("wrangler dev on loopback measures the local runtime on this machine, not Cloudflare's edge.");
}

main().catch((err) => {
  console.error(err);
  killAllNow();
  process.exit(1);
});

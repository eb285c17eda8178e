// Load test (`npm run load`): N concurrent signaling calls, each a full offer/answer and
// CANDIDATES-candidate exchange both ways from a Viam caller (Call + CallUpdate) to a Voice callee
// (Connect), plus M paired audio-relay calls at 50 frames a second each way, against `wrangler
// dev` on loopback. N ramps 25, 50, 100, 200, … up to LOAD_CALLS; the knee is the first step
// whose setup time is double the first step's. Prints a table and writes bench/load-results.json.
//
// Environment: LOAD_CALLS (largest N, default 200), LOAD_AUDIO (M, default 20), LOAD_BUDGET_S
// (whole run, default 600), LOAD_STEP_TIMEOUT_S (one step, default 120), LOAD_OUT (where the
// results go, default bench/load-results.json), BENCH_SERVER_LOGS (see processes.mjs). Bounded in
// count and time; loopback only; wrangler dev is processes.mjs startWrangler's (a snapshot of the
// working tree, its own process group and a temp dir under TMPDIR, killed at exit).
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { signToken } from "../scripts/dev-token.mjs";
import { audioPair, CANDIDATES, expectedCandidates, FRAMES_PER_SECOND, openCallee, placeCall } from "./load-calls.mjs";
import { startWrangler, stop, stopServersOnExit } from "./processes.mjs";
import { loadProtos, workerClients } from "./protos.mjs";
import { log, machine, table } from "./report.mjs";
import { percentile, round, sleep } from "./stats.mjs";

const ROOT = resolve(import.meta.dirname, "..");
const SECRET = "load-test-secret";
const OUT = resolve(process.env.LOAD_OUT ?? join(ROOT, "bench/load-results.json"));
const config = {
  maxCalls: Math.min(Number(process.env.LOAD_CALLS ?? 200), 5_000),
  audioPairs: Math.min(Number(process.env.LOAD_AUDIO ?? 20), 500),
  budgetSeconds: Number(process.env.LOAD_BUDGET_S ?? 600),
  stepTimeoutSeconds: Number(process.env.LOAD_STEP_TIMEOUT_S ?? 120),
  candidatesPerSide: CANDIDATES,
};
const steps = [];
for (let n = 25; n < config.maxCalls; n *= 2) steps.push(n);
steps.push(config.maxCalls);

const startedAt = performance.now();
const run = Date.now().toString(36);

stopServersOnExit("load", config.budgetSeconds + 60);

const ms = (x) => round(x, 1);
const sortedOf = (xs) => Float64Array.from(xs).sort();

/** One step: n signaling calls at once, with the audio pairs streaming throughout. */
async function step(n, protos, server) {
  const { signaling, voice } = workerClients(protos, server.baseUrl);
  const prefix = `ld${run}-${n}`;
  const deadline = performance.now() + config.stepTimeoutSeconds * 1000;

  // Audio first, so the whole signaling burst runs under the relay's load.
  const pairs = await Promise.all(Array.from({ length: config.audioPairs }, (_, j) =>
    audioPair(server, SECRET, `${prefix}-room${j}`, `${prefix}-aa${j}`, `${prefix}-ab${j}`)));
  let signalingDone = false;
  const audio = Promise.all(pairs.map(async (pair) => {
    // Streams in 2 s stretches until the signaling calls are done (at least one stretch); each
    // report is cumulative, so the last one covers the whole call.
    let report;
    do report = await pair.stream(2_000); while (!signalingDone && performance.now() < deadline);
    await pair.close();
    return report;
  }));

  // Every callee's stream opens first; callers then all dial at once.
  const callees = await Promise.all(Array.from({ length: n }, async (_, i) => openCallee(voice, await signToken(`${prefix}-e${i}`, SECRET))));
  await sleep(300 + 3 * n);
  const t0 = performance.now();
  const outcomes = await Promise.all(callees.map(async (callee, i) => {
    // Cleared once the call is done: a pending step timer would hold the process open after the run.
    let timer;
    const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error("step timeout")), Math.max(0, deadline - performance.now())); });
    try {
      const token = await signToken(`${prefix}-r${i}`, SECRET);
      const caller = await Promise.race([placeCall(signaling, token, `${prefix}-e${i}`), timeout]);
      const calleeGot = await Promise.race([callee.result, timeout]);
      return { ok: true, caller, callee: calleeGot };
    } catch (err) {
      callee.cancel();
      return { ok: false, error: String(err?.message ?? err).slice(0, 200) };
    } finally {
      clearTimeout(timer);
    }
  }));
  const burstSeconds = (performance.now() - t0) / 1000;
  signalingDone = true;
  const audioResults = (await audio).flat();

  // Every candidate counted both ways: lost = expected but not received; misordered = received out of order.
  const want = { toCallee: expectedCandidates("caller"), toCaller: expectedCandidates("callee") };
  let lost = 0, duplicated = 0, misordered = 0, completed = 0, retries = 0;
  const setup = [], answer = [];
  const errors = new Map();
  for (const o of outcomes) {
    if (!o.ok) {
      errors.set(o.error, (errors.get(o.error) ?? 0) + 1);
      lost += 2 * CANDIDATES; // an unfinished call counts all its candidates as lost
      continue;
    }
    retries += o.caller.retries;
    for (const [got, expected] of [[o.callee.candidates, want.toCallee], [o.caller.candidates, want.toCaller]]) {
      lost += expected.filter((c) => !got.includes(c)).length;
      duplicated += got.length - new Set(got).size;
      if (got.join("\n") !== expected.filter((c) => got.includes(c)).join("\n")) misordered++;
    }
    const complete = o.callee.candidates.length === CANDIDATES && o.caller.candidates.length === CANDIDATES;
    if (complete && o.callee.offer !== null) completed++;
    setup.push(Math.max(o.caller.lastAt, o.callee.lastAt) - o.caller.started);
    answer.push(o.caller.answerAt - o.caller.started);
  }
  const s = sortedOf(setup), a = sortedOf(answer);
  const frames = audioResults.reduce((acc, d) => ({ sent: acc.sent + d.sent, received: acc.received + d.received, lost: acc.lost + d.lost,
    outOfOrder: acc.outOfOrder + d.outOfOrder }), { sent: 0, received: 0, lost: 0, outOfOrder: 0 });
  const relay = sortedOf(audioResults.flatMap((d) => d.latencies));
  return {
    calls: n, completed, failed: n - completed, candidatesExpected: n * 2 * CANDIDATES, candidatesLost: lost, duplicated, misordered,
    callerRetries: retries, burstSeconds: Math.round(burstSeconds * 100) / 100,
    setupMs: { p50: ms(percentile(s, 50)), p99: ms(percentile(s, 99)), max: ms(s.at(-1)) },
    answerMs: { p50: ms(percentile(a, 50)), p99: ms(percentile(a, 99)) },
    audio: { pairs: config.audioPairs, framesPerSecondEachWay: FRAMES_PER_SECOND, ...frames,
      relayMs: { p50: ms(percentile(relay, 50)), p99: ms(percentile(relay, 99)) } },
    errors: Object.fromEntries(errors),
  };
}

function loadTable(results) {
  return table(["calls", "completed", "cand. lost", "dup", "misord.", "retries", "answer p50", "setup p50", "setup p99", "audio frames", "frames lost", "relay p50", "relay p99"],
    results.map((r) => [r.calls, r.completed, r.candidatesLost, r.duplicated, r.misordered, r.callerRetries,
      r.answerMs.p50, r.setupMs.p50, r.setupMs.p99, r.audio.sent, r.audio.lost, r.audio.relayMs.p50, r.audio.relayMs.p99]));
}

/** The first step whose latency (p50 or p99 setup) is at least twice the first step's. */
function knee(results, key) {
  const base = results[0]?.setupMs[key];
  const hit = results.find((r) => base && r.setupMs[key] !== null && r.setupMs[key] >= 2 * base);
  return hit ? { calls: hit.calls, setupMs: hit.setupMs[key], baselineMs: base } : { calls: null, note: `setup ${key} stayed under 2× the ${results[0]?.calls}-call step's ${base} ms` };
}

async function main() {
  log(`load: steps ${steps.join(", ")} concurrent calls, ${config.audioPairs} audio pairs, ${CANDIDATES} candidates per side`);
  const server = await startWrangler(SECRET);
  const protos = await loadProtos(server.source);
  log(`wrangler dev up at ${server.baseUrl}`);
  // Warm-up: one small step, not reported, so the first measured step is not a cold start.
  await step(5, protos, server).catch((err) => log("warm-up failed:", err));
  const results = [];
  for (const n of steps) {
    if (performance.now() - startedAt > config.budgetSeconds * 1000) { log(`budget spent; skipping ${n}`); break; }
    log(`step: ${n} calls …`);
    const r = await step(n, protos, server);
    results.push(r);
    log(`  ${r.completed}/${n} completed, ${r.candidatesLost} candidates lost, setup p50 ${r.setupMs.p50} ms p99 ${r.setupMs.p99} ms; audio ${r.audio.lost}/${r.audio.sent} frames lost`);
    if (Object.keys(r.errors).length) log("  errors:", r.errors);
  }
  await stop(server);
  const report = {
    when: new Date().toISOString(), config, steps, machine: machine(),
    kneeByP50: knee(results, "p50"), kneeByP99: knee(results, "p99"), results,
    notes: "setup = from the caller's Call to both sides holding all of the other's candidates; answer = to the caller holding the answer. "
      + "Client and server share this machine's CPUs over loopback: the numbers are the whole system's, not the Worker's alone.",
  };
  writeFileSync(OUT, JSON.stringify(report, null, 2) + "\n");
  console.log(loadTable(results));
  console.log(`knee (setup p50 ≥ 2× first step): ${report.kneeByP50.calls ?? "none"}; (p99): ${report.kneeByP99.calls ?? "none"}`);
  console.log(`written: ${OUT}`);
  const bad = results.some((r) => r.candidatesLost > 0 || r.audio.lost > 0 || r.completed < r.calls);
  process.exitCode = bad ? 1 : 0;
}

main().catch((err) => { console.error(err); process.exit(1); });

// Call setups per second against a fleet of Viam machines, each answering the way goutils'
// answerer does (rpc/wrtc_signaling_answerer.go): `defaultMaxAnswerers = 2` Answer streams open
// per machine, each sent with `heartbeats-allowed: true`; a stream takes one call — it answers
// init, one candidate update and done — and when that call's stream ends the machine opens a fresh
// Answer stream in its place (signaling-bench.mjs onlineCallee, `replace: "on-end"`).
//
// Callers (Viam SDK: gRPC-web Call, then CallUpdate(done)) call all machines at once, slot k
// calling machine k mod 20, and the number of calls in flight ramps up (BENCH_MACHINES_STEPS,
// each step BENCH_MACHINES_STEP_S long). A setup is one whole call: Call until the caller holds the
// machine's candidate, the stream's end, and CallUpdate(done). With more calls in flight than
// answerers, calls reach a machine whose answerers are all busy: they are not retried on
// not_found here — a not_found is an error and is counted as such (the server is to queue such
// calls, not turn them away). Before anything is timed every machine is registered: each has
// answered calls, and every stream those calls used has been replaced and had time to register.
//
// Rate limits (model/limits.ts REQUESTS_PER_SECOND per identity): callers rotate over
// CALLER_IDENTITIES identities so none of them comes near its limit (a call costs its caller two
// requests); a machine is one identity, and whatever its streams are refused is counted
// ("host limited").
import { Code, ConnectError } from "@connectrpc/connect";
import { signToken } from "../scripts/dev-token.mjs";
import { CANDIDATE } from "./fixtures.mjs";
import { cpuBetween } from "./processes.mjs";
import { workerClients } from "./protos.mjs";
import { log, show, table } from "./report.mjs";
import { onlineCallee, viamCall } from "./signaling-bench.mjs";
import { round, sleep, summarize } from "./stats.mjs";

/** goutils' defaultMaxAnswerers: Answer streams a machine keeps open. */
const ANSWERERS_PER_MACHINE = 2;
/** 200 callers: at 1 000 setups/s (far above what one wrangler dev reaches) each makes 10
 * requests/s, half its limit, so no caller is ever the bottleneck. */
const CALLER_IDENTITIES = 200;
/** A slot whose call failed waits this long before its next: a dial that fails is redialed after a
 * pause, not in a tight loop, and the error count should not measure how fast a loop can spin. */
const ERROR_PAUSE_MS = 10;
/** A step counts as growing if its setups/s is at least this much above the previous step's. */
const KNEE_GROWTH = 1.1;

const PREFIX = { machine: "machine", caller: "mcaller" };

/** What an error of a call or stream is, for the counts: not_found, limited, or its code's name. */
function classify(err) {
  const e = ConnectError.from(err);
  if (e.code === Code.NotFound) return "notFound";
  if (e.code === Code.ResourceExhausted && / makes more than \d+ requests a second/.test(e.rawMessage)) {
    return e.rawMessage.startsWith(PREFIX.caller) ? "callerLimited" : "hostLimited";
  }
  return Code[e.code] ?? String(e.code);
}

const bump = (o, k) => { o[k] = (o[k] ?? 0) + 1; };

/** The knee: the step after which setups/s stops growing by KNEE_GROWTH, or errors appear. */
function kneeOf(steps) {
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i], next = steps[i + 1];
    if (s.errors > 0) {
      return i === 0 ? { inFlight: null, reason: `errors already at ${s.inFlight} in flight` }
        : { inFlight: steps[i - 1].inFlight, setupsPerSec: steps[i - 1].setupsPerSec, reason: `errors at ${s.inFlight} in flight` };
    }
    if (!next) return { inFlight: s.inFlight, setupsPerSec: s.setupsPerSec, reason: "still growing at the top step" };
    if (next.errors === 0 && next.setupsPerSec < s.setupsPerSec * KNEE_GROWTH) {
      return { inFlight: s.inFlight, setupsPerSec: s.setupsPerSec, reason: `${next.inFlight} in flight: ${next.setupsPerSec} setups/s, under +${Math.round((KNEE_GROWTH - 1) * 100)} %` };
    }
  }
  return { inFlight: null, reason: "no steps" };
}

/**
 * Runs the ramp against `server` (processes.mjs startWrangler) and returns its results;
 * machinesTable(results) is its table. `cpu()` reads the server's CPU (processes.mjs groupCpu).
 */
export async function machinesThroughput({ server, protos, secret, machines = 20, steps, stepSeconds, cpu }) {
  const clients = workerClients(protos, server.baseUrl, { viam: "grpc-web", ownAgent: true });
  const run = Date.now().toString(36);
  const hostErrors = {};
  let hostErrorSample = null;
  const hosts = await Promise.all(Array.from({ length: machines }, async (_, i) => {
    const name = `${PREFIX.machine}-${run}-${i}`;
    const headers = { authorization: `Bearer ${await signToken(name, secret)}`, "rpc-host": name, "heartbeats-allowed": "true" };
    return { name, side: null, headers };
  }));
  const callers = await Promise.all(Array.from({ length: CALLER_IDENTITIES }, async (_, i) => `Bearer ${await signToken(`${PREFIX.caller}-${run}-${i}`, secret)}`));
  let nextCaller = 0;
  const headersFor = (host) => ({ authorization: callers[nextCaller++ % callers.length], "rpc-host": host.name });
  try {
    for (const h of hosts) {
      h.side = onlineCallee(clients, h.headers, {
        door: "viam", streams: ANSWERERS_PER_MACHINE, candidate: CANDIDATE, replace: "on-end",
        onError: (err) => { bump(hostErrors, classify(err)); hostErrorSample ??= String(err); },
      });
    }
    // Registration: every caller identity makes one call (its objects exist before timing), every
    // machine answers several; not_found is retried here, as a client would until a machine is up.
    const t0 = performance.now();
    let warm = 0;
    await Promise.all(hosts.map(async (host, k) => {
      for (let i = k; i < CALLER_IDENTITIES; i += machines) { await viamCall(clients.signaling, headersFor(host), { candidate: CANDIDATE }); warm++; }
    }));
    const until = Date.now() + 10_000;
    while (hosts.some((h) => h.side.state.opened < h.side.state.answered + ANSWERERS_PER_MACHINE) && Date.now() < until) await sleep(20);
    await sleep(500); // the last replacement streams register
    const registration = { warmupCalls: warm, seconds: round((performance.now() - t0) / 1000, 1), hostErrors: { ...hostErrors } };
    log(`  ${machines} machines registered: ${warm} warm-up calls in ${registration.seconds} s${Object.keys(hostErrors).length ? `; host stream errors ${JSON.stringify(hostErrors)}` : ""}`);

    const results = [];
    for (const inFlight of steps) {
      const s = { inFlight, attempts: 0, setups: 0, errors: 0, notFound: 0, callerLimited: 0, hostLimited: 0, otherErrors: {}, firstError: null };
      const before = { ...hostErrors };
      const latencies = [];
      const cpuBefore = cpu();
      const started = performance.now();
      const end = started + stepSeconds * 1000;
      await Promise.all(Array.from({ length: inFlight }, async (_, k) => {
        const host = hosts[k % machines];
        while (performance.now() < end) {
          s.attempts++;
          try {
            const r = await viamCall(clients.signaling, headersFor(host), { candidate: CANDIDATE, retryNotFound: false });
            s.setups++;
            latencies.push(r.candidateMs);
          } catch (err) {
            s.errors++;
            s.firstError ??= String(err);
            const kind = classify(err);
            if (kind in s && kind !== "otherErrors") s[kind]++;
            else bump(s.otherErrors, kind);
            await sleep(ERROR_PAUSE_MS);
          }
        }
      }));
      const wallMs = performance.now() - started; // until the last call started in the step is over
      const used = cpuBetween(cpuBefore, cpu(), Math.max(1, s.setups));
      s.seconds = round(wallMs / 1000, 2);
      s.setupsPerSec = round(s.setups / (wallMs / 1000), 1);
      s.callToCandidateMs = summarize(latencies);
      s.hostStreamErrors = Object.fromEntries(Object.entries(hostErrors).map(([k, v]) => [k, v - (before[k] ?? 0)]).filter(([, v]) => v > 0));
      s.serverCpuMsPerSetup = used.total;
      s.serverCpuMsPerSetupByProcess = used.byRole;
      results.push(s);
      log(`  ${inFlight} in flight: ${s.setupsPerSec} setups/s (${s.setups} in ${s.seconds} s), ${s.errors} errors (${s.notFound} not_found, ${s.callerLimited} caller limited, ${s.hostLimited} host limited${Object.keys(s.otherErrors).length ? `, ${JSON.stringify(s.otherErrors)}` : ""}), ` +
        `Call→candidate median ${s.callToCandidateMs.median} ms, p99 ${s.callToCandidateMs.p99} ms, ${s.serverCpuMsPerSetup} CPU ms/setup${Object.keys(s.hostStreamErrors).length ? `; host stream errors ${JSON.stringify(s.hostStreamErrors)}` : ""}`);
    }
    return {
      measuredPath: "callers (gRPC-web Call → answer → candidate → stream end → CallUpdate(done)) to machines holding 2 Viam Answer streams each (heartbeats-allowed: true), each stream answering init + candidate update + done and replaced once its call's stream ends; not_found is not retried",
      config: { machines, answerersPerMachine: ANSWERERS_PER_MACHINE, steps, stepSeconds, callerIdentities: CALLER_IDENTITIES, errorPauseMs: ERROR_PAUSE_MS, kneeGrowth: KNEE_GROWTH },
      registration, steps: results, knee: kneeOf(results), hostStreamErrorSample: hostErrorSample,
    };
  } finally {
    for (const h of hosts) h.side?.stop();
    await sleep(200);
    clients.close();
  }
}

export function machinesTable(m) {
  const c = m.config;
  const rows = m.steps.map((s) => [s.inFlight, show(s.setupsPerSec, 1), s.setups, s.errors, s.notFound, s.callerLimited, s.hostLimited,
    Object.entries({ ...s.otherErrors, ...Object.fromEntries(Object.entries(s.hostStreamErrors).map(([k, v]) => [`host stream ${k}`, v])) }).map(([k, v]) => `${k} ${v}`).join(", ") || "0",
    `${show(s.callToCandidateMs.median, 1)} / ${show(s.callToCandidateMs.p99, 1)}`, show(s.serverCpuMsPerSetup)]);
  const knee = m.knee.inFlight === null ? `none (${m.knee.reason})` : `${m.knee.inFlight} in flight, ${m.knee.setupsPerSec} setups/s (${m.knee.reason})`;
  return `\n### Call setups/s: ${c.machines} machines × ${c.answerersPerMachine} Viam Answer streams (goutils' answerer), ${c.stepSeconds} s per step\n\n` +
    table(["calls in flight", "setups/s", "setups", "errors", "not_found", "caller limited", "host limited", "other errors", "Call→candidate median / p99 ms", "server CPU ms/setup"], rows) +
    `\n\nKnee: ${knee}. not_found is an error here (not retried); callers rotate over ${c.callerIdentities} identities.`;
}

// The Viam exchange against the floor of its own shape (issue 19): this Worker and the Viam-shaped
// floor (bench/viam-floor/worker.js: a bare Worker and one Durable Object per host serving Call,
// Answer and CallUpdate over the Connect protocol, framing by hand), each under its own `wrangler
// dev` of the same version, driven by the same client:
// - the machines: 20, each keeping goutils' `defaultMaxAnswerers = 2` Answer streams open
//   (signaling-bench.mjs onlineCallee, `replace: "on-end"`, heartbeats-allowed): a stream takes one
//   call, answers init, one candidate update and done, and a fresh stream replaces it once the
//   call's stream has ended;
// - the callers: as goutils' dialer, Call, then once the host's candidate has arrived
//   CallUpdate(done), then the Call stream is cancelled (not drained). 200 caller identities in
//   turn, so none comes near this Worker's per-identity rate (the floor ignores the tokens).
// Both speak Connect (binary protobuf) over HTTP/1.1 on loopback, through one keep-alive pool per
// server.
//
// Measured, for each server and each floor-shaped experiment (EXPERIMENTS below: the floor with
// one trait of ours), in `rounds` interleaved rounds per phase (ours, the floor, each experiment in
// turn), so load from other processes on the machine falls on all alike:
// - latency: `calls` calls one after another over the 20 machines, Call → answer → first
//   candidate (median, p99), and where that time goes, from the two clients' own clocks (one
//   process): Call sent → the answerer holds the offer; answer written → the caller holds it;
//   candidate written → the caller holds it;
// - throughput: `steps` calls in flight (each slot calling machine k mod 20) for `stepSeconds`;
//   a setup is the whole exchange, CallUpdate(done) included; server CPU per setup, split by
//   process (processes.mjs groupCpu: wrangler's Node, its workerd proxy, the workerd runtime);
// - one plain `GET /healthz` through each Worker, one after another (signaling-bench.mjs httpFloor).
// Failed calls are counted by kind, never retried in a measured phase.
import { Code, ConnectError } from "@connectrpc/connect";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { signToken } from "../scripts/dev-token.mjs";
import { ANSWER_SDP, CANDIDATE, OFFER_SDP } from "./fixtures.mjs";
import { cpuBetween, groupCpu, machineBusyMs, settle, startWrangler } from "./processes.mjs";
import { workerClients } from "./protos.mjs";
import { log, ratio, show, table } from "./report.mjs";
import { httpFloor, onlineCallee } from "./signaling-bench.mjs";
import { round, sleep, summarize } from "./stats.mjs";

const ROOT = resolve(import.meta.dirname, "..");
const ANSWERERS_PER_MACHINE = 2; // goutils' defaultMaxAnswerers
const CALLER_IDENTITIES = 200;
const CALL_TIMEOUT_MS = 15_000;
const ERROR_PAUSE_MS = 10;

/** The floor's wrangler config: the project's compatibility date and flags; `shape` as its SHAPE var
 * ("call-object": the experiment with an object per call, see bench/viam-floor/worker.js;
 * "connect-es": the floor served by connect-es, bench/viam-floor/connect-es.js, its own entry). */
function viamFloorToml(shape) {
  const project = readFileSync(join(ROOT, "wrangler.toml"), "utf8");
  const line = (key) => new RegExp(`^${key}\\s*=.*$`, "m").exec(project)?.[0] ?? "";
  return [
    'name = "bench-viam-floor"', `main = "${shape === "connect-es" ? "connect-es.js" : "worker.js"}"`, line("compatibility_date"), line("compatibility_flags"), "",
    "[[durable_objects.bindings]]", 'name = "HOST"', 'class_name = "Host"', "",
    "[[durable_objects.bindings]]", 'name = "CALL"', 'class_name = "CallRoom"', "",
    "[[migrations]]", 'tag = "v1"', 'new_sqlite_classes = ["Host", "CallRoom"]', "",
    ...(shape ? ["[vars]", `SHAPE = ${JSON.stringify(shape)}`, ""] : []),
  ].join("\n");
}

/** Starts the Viam-shaped floor under wrangler dev, built and served as the Worker under test is
 * (`shape`: "call-object" for the experiment with an object per call). */
export function startViamFloor(authSecret, { name = "wrangler dev (Viam-shaped floor)", inspectorPort, editToml, shape } = {}) {
  return startWrangler(authSecret, { name, inspectorPort, editToml, config: { toml: viamFloorToml(shape), dir: join(ROOT, "bench/viam-floor") } });
}

/**
 * `signaling` with its Answer streams watched: `marks` gets, per call uuid, when the answerer
 * received the offer (`offer`) and when the transport took its answer (`init`) and candidate
 * (`update`) to send. The client under it is the same; only clocks are read.
 */
function watched(signaling, marks) {
  const mark = (uuid, what) => {
    let m = marks.get(uuid);
    if (!m) marks.set(uuid, (m = {}));
    m[what] ??= performance.now();
  };
  return new Proxy(signaling, {
    get(target, key) {
      if (key !== "answer") return target[key];
      return (outbox, options) => {
        const sent = (async function* () { for await (const res of outbox) { mark(res.uuid, res.stage.case); yield res; } })();
        const received = target.answer(sent, options);
        return (async function* () { for await (const req of received) { if (req.stage.case === "init") mark(req.uuid, "offer"); yield req; } })();
      };
    },
  });
}

/**
 * goutils' dialer, as far as signalling goes: Call; the answer; the host's first candidate; then
 * CallUpdate(done), and the Call stream is cancelled. Returns the times from sending the Call.
 */
async function dial(signaling, headers, marks) {
  const abort = new AbortController();
  const t0 = performance.now();
  try {
    const stream = signaling.call({ sdp: OFFER_SDP }, { headers, signal: abort.signal, timeoutMs: CALL_TIMEOUT_MS })[Symbol.asyncIterator]();
    const first = await stream.next();
    const answerAt = performance.now();
    if (first.done || first.value.stage.case !== "init" || first.value.stage.value.sdp !== ANSWER_SDP) {
      throw new Error(`expected the answer, got ${first.done ? "the end of the stream" : first.value.stage.case}`);
    }
    const second = await stream.next();
    const candidateAt = performance.now();
    if (second.done || second.value.stage.case !== "update" || second.value.stage.value.candidate?.candidate !== CANDIDATE.candidate) {
      throw new Error(`expected the candidate, got ${second.done ? "the end of the stream" : second.value.stage.case}`);
    }
    const { uuid } = first.value;
    await signaling.callUpdate({ uuid, update: { case: "done", value: true } }, { headers, timeoutMs: CALL_TIMEOUT_MS });
    const doneAt = performance.now();
    const m = marks.get(uuid) ?? {};
    marks.delete(uuid);
    return {
      answerMs: answerAt - t0, candidateMs: candidateAt - t0, setupMs: doneAt - t0,
      legs: m.offer && m.init && m.update ? { offer: m.offer - t0, answer: answerAt - m.init, candidate: candidateAt - m.update, callUpdate: doneAt - candidateAt } : null,
    };
  } finally {
    abort.abort(); // goutils cancels the Call once it has what it needs
  }
}

/** What a failed call was: its Connect code's name, with the HTTP 500 of wrangler's proxy apart. */
function kindOf(err) {
  const e = ConnectError.from(err);
  if (/network connection lost/i.test(e.rawMessage) || /HTTP 500/.test(e.rawMessage)) return "proxy500";
  return Code[e.code] ?? String(e.code);
}

/** 20 machines online on `server`, callers ready; `dial(k)` calls machine k mod `machines`. */
export async function fleet({ server, protos, secret, machines, label }) {
  const clients = workerClients(protos, server.baseUrl, { viam: "connect", ownAgent: true });
  const marks = new Map();
  const signaling = watched(clients.signaling, marks);
  const run = `${label}-${Date.now().toString(36)}`;
  const hostErrors = {};
  let hostErrorSample = null;
  const hosts = await Promise.all(Array.from({ length: machines }, async (_, i) => {
    const name = `vf-machine-${run}-${i}`;
    return { name, headers: { authorization: `Bearer ${await signToken(name, secret)}`, "rpc-host": name, "heartbeats-allowed": "true" } };
  }));
  const callers = await Promise.all(Array.from({ length: CALLER_IDENTITIES }, async (_, i) => `Bearer ${await signToken(`vf-caller-${run}-${i}`, secret)}`));
  let next = 0;
  const headersFor = (host) => ({ authorization: callers[next++ % callers.length], "rpc-host": host.name });
  for (const h of hosts) {
    h.side = onlineCallee({ ...clients, signaling }, h.headers, {
      door: "viam", streams: ANSWERERS_PER_MACHINE, candidate: CANDIDATE, replace: "on-end",
      onError: (err) => { const k = kindOf(err); hostErrors[k] = (hostErrors[k] ?? 0) + 1; hostErrorSample ??= String(err); },
    });
  }
  // Registration: every caller identity calls once (its objects exist before timing); not_found is
  // retried here, as a client would until a machine is up.
  await Promise.all(hosts.map(async (host, k) => {
    for (let i = k; i < CALLER_IDENTITIES; i += machines) {
      for (let attempt = 0; ; attempt++) {
        try { await dial(signaling, headersFor(host), marks); break; } catch (err) {
          if (attempt > 200) throw err;
          await sleep(10);
        }
      }
    }
  }));
  const until = Date.now() + 10_000;
  while (hosts.some((h) => h.side.state.opened < h.side.state.answered + ANSWERERS_PER_MACHINE) && Date.now() < until) await sleep(20);
  await sleep(500);
  return {
    dial: (k) => dial(signaling, headersFor(hosts[k % machines]), marks),
    hostErrors: () => ({ ...hostErrors }), hostErrorSample: () => hostErrorSample,
    async stop() { for (const h of hosts) h.side.stop(); await sleep(200); clients.close(); },
  };
}

/** Raw samples of one system, gathered over interleaved rounds. */
const samples = () => ({ answer: [], candidate: [], setup: [], legs: { offer: [], answer: [], candidate: [], callUpdate: [] }, errors: {}, firstError: null });

function failed(acc, err) {
  const k = kindOf(err);
  acc.errors[k] = (acc.errors[k] ?? 0) + 1;
  acc.firstError ??= String(err);
}

/** `calls` calls one after another over the machines, into `acc`. */
export async function latency(f, calls, acc = samples()) {
  for (let i = 0; i < calls; i++) {
    try {
      const r = await f.dial(i);
      acc.answer.push(r.answerMs); acc.candidate.push(r.candidateMs); acc.setup.push(r.setupMs);
      if (r.legs) for (const k of Object.keys(acc.legs)) acc.legs[k].push(r.legs[k]);
    } catch (err) {
      failed(acc, err);
      await sleep(ERROR_PAUSE_MS);
    }
  }
  return acc;
}

const latencySummary = (acc) => ({
  callToCandidateMs: summarize(acc.candidate), callToAnswerMs: summarize(acc.answer), wholeSetupMs: summarize(acc.setup),
  legsMs: Object.fromEntries(Object.entries(acc.legs).map(([k, v]) => [k, summarize(v)])),
  errors: acc.errors, firstError: acc.firstError,
});

/** `inFlight` calls at a time for `seconds`, into `acc`: setups, wall time, server and client CPU. */
async function throughput(f, { inFlight, seconds, cpu }, acc) {
  const cpuBefore = cpu();
  const clientBefore = process.cpuUsage();
  const started = performance.now();
  const end = started + seconds * 1000;
  await Promise.all(Array.from({ length: inFlight }, async (_, k) => {
    while (performance.now() < end) {
      try {
        const r = await f.dial(k);
        acc.setups++;
        acc.candidate.push(r.candidateMs);
      } catch (err) {
        failed(acc, err);
        await sleep(ERROR_PAUSE_MS);
      }
    }
  }));
  acc.wallMs += performance.now() - started; // until the last call started in the round is over
  const used = cpuBetween(cpuBefore, cpu());
  for (const [role, ms] of Object.entries(used.byRole)) acc.cpuByRole[role] = (acc.cpuByRole[role] ?? 0) + ms;
  acc.cpu += used.total;
  const client = process.cpuUsage(clientBefore);
  acc.clientCpu += (client.user + client.system) / 1000;
  return acc;
}

function throughputSummary(acc, inFlight) {
  const per = Math.max(1, acc.setups);
  return {
    inFlight, seconds: round(acc.wallMs / 1000, 2), setups: acc.setups, setupsPerSec: round(acc.setups / (acc.wallMs / 1000), 1),
    failed: Object.values(acc.errors).reduce((a, b) => a + b, 0), errors: acc.errors, firstError: acc.firstError,
    callToCandidateMs: summarize(acc.candidate), serverCpuMsPerSetup: round(acc.cpu / per, 2),
    serverCpuMsPerSetupByProcess: Object.fromEntries(Object.entries(acc.cpuByRole).map(([k, v]) => [k, round(v / per, 2)])),
    // The clients (this process) share the machine's cores with the servers: what they use is not left for them.
    clientCpuMsPerSetup: round(acc.clientCpu / per, 2),
  };
}

/**
 * Runs the comparison on `ours` and `floor` (processes.mjs startWrangler / startViamFloor, both up).
 * `cpuOf(server)` reads a server's CPU. Returns the results; viamFloorTable(results) prints them.
 */
export async function viamFloorComparison({ ours, floor, experiments = {}, protos, secret, cpuOf, machines = 20, calls = 300, steps = [40], stepSeconds = 5, rounds = 3, healthzRequests = 300 }) {
  const systems = [["ours", ours], ["floor", floor], ...Object.entries(experiments).filter(([key]) => EXPERIMENTS[key])];
  const out = {
    measuredPath: "20 machines × 2 Viam Answer streams (goutils' answerer: init, one candidate update, done; a fresh stream once the call's stream ends) and callers as goutils' dialer (Call → answer → first candidate → CallUpdate(done) → cancel the Call), Connect protocol over HTTP/1.1; latency: one call at a time; throughput: `inFlight` calls at a time",
    floorShape: "bench/viam-floor/worker.js: bare Worker + one Durable Object per host; one HTTP request per Call and per held Answer stream, each with a hibernatable WebSocket to the host's object; AnswerResponse init/update bytes forwarded as CallResponse bytes; hand-written Connect envelopes; no auth, no storage, no per-call object",
    interleaving: "each phase runs in `rounds` rounds, every system in turn in each (ours, floor, experiment), so load from other processes on the machine falls on all alike; figures are over all rounds",
    config: { machines, answerersPerMachine: ANSWERERS_PER_MACHINE, calls, steps, stepSeconds, rounds, healthzRequests, callerIdentities: CALLER_IDENTITIES },
    experiments: Object.fromEntries(systems.slice(2).map(([key]) => [key, EXPERIMENTS[key]])),
    ...Object.fromEntries(systems.map(([key]) => [key, { throughput: [] }])),
  };
  const fleets = {};
  const quiet = async () => {
    const busy = await settle(systems.map(([, server]) => server));
    if (busy.length) log(`  (${busy.join(", ")} still busy after 15 s; measuring anyway)`);
  };
  try {
    for (const [key, server] of systems) {
      log(`Viam-shaped floor comparison: ${machines} machines × ${ANSWERERS_PER_MACHINE} Answer streams on ${key}`);
      const t0 = performance.now();
      fleets[key] = await fleet({ server, protos, secret, machines, label: key });
      out[key].registrationSeconds = round((performance.now() - t0) / 1000, 1);
    }
    const meter = otherCpu([...systems.map(([, server]) => server)]);
    const lat = Object.fromEntries(systems.map(([key]) => [key, samples()]));
    for (let round = 0; round < rounds; round++) {
      for (const [key] of systems) {
        await quiet();
        await latency(fleets[key], Math.ceil(calls / rounds), lat[key]);
      }
    }
    for (const [key] of systems) {
      const r = out[key].latency = latencySummary(lat[key]);
      log(`  ${key}: ${r.callToCandidateMs.n} calls one at a time, Call→candidate median ${r.callToCandidateMs.median} ms, p99 ${r.callToCandidateMs.p99} ms; legs (median) offer ${r.legsMs.offer.median}, answer ${r.legsMs.answer.median}, candidate ${r.legsMs.candidate.median}, CallUpdate ${r.legsMs.callUpdate.median} ms; errors ${JSON.stringify(r.errors)}`);
    }
    for (const inFlight of steps) {
      const acc = Object.fromEntries(systems.map(([key]) => [key, { ...samples(), setups: 0, wallMs: 0, cpu: 0, cpuByRole: {}, clientCpu: 0 }]));
      for (let round = 0; round < rounds; round++) {
        for (const [key, server] of systems) {
          await quiet();
          await throughput(fleets[key], { inFlight, seconds: stepSeconds / rounds, cpu: cpuOf(server) }, acc[key]);
        }
      }
      for (const [key] of systems) {
        const r = throughputSummary(acc[key], inFlight);
        out[key].throughput.push(r);
        log(`  ${key}: ${inFlight} in flight, ${r.setupsPerSec} setups/s (${r.setups} in ${r.seconds} s), ${r.failed} failed ${JSON.stringify(r.errors)}, Call→candidate median ${r.callToCandidateMs.median} ms, p99 ${r.callToCandidateMs.p99} ms, CPU ms/setup ${r.serverCpuMsPerSetup} ${JSON.stringify(r.serverCpuMsPerSetupByProcess)}, client ${r.clientCpuMsPerSetup}`);
      }
    }
    out.otherProcessesCpuPercent = meter();
    for (const [key] of systems) {
      out[key].hostStreamErrors = fleets[key].hostErrors();
      out[key].hostStreamErrorSample = fleets[key].hostErrorSample();
    }
  } finally {
    await Promise.all(Object.values(fleets).map((f) => f.stop()));
  }
  for (const [key, server] of systems) {
    await quiet();
    const r = out[key].healthz = await httpFloor(`${server.baseUrl}/healthz`, { requests: healthzRequests, cpu: cpuOf(server) });
    log(`  ${key}: GET /healthz median ${r.median} ms, p99 ${r.p99} ms, CPU ms ${r.serverCpuMsPerRequest}`);
  }
  out.comparison = compare(out, "ours", "floor");
  out.experimentComparisons = Object.fromEntries(systems.slice(2).map(([key]) => [key, compare(out, key, "floor")]));
  return out;
}

/** The % of one core that processes other than `servers` and this one used since the call. */
function otherCpu(servers) {
  const own = () => servers.reduce((sum, s) => sum + groupCpu(s).total, 0) + (process.cpuUsage().user + process.cpuUsage().system) / 1000;
  const [busy0, own0, t0] = [machineBusyMs(), own(), performance.now()];
  return () => round(((machineBusyMs() - busy0 - (own() - own0)) / (performance.now() - t0)) * 100, 0);
}

/** The floor-shaped experiments (bench/viam-floor/worker.js SHAPE): the floor with one trait of ours each. */
export const EXPERIMENTS = {
  callObject: {
    label: "floor + object per call", shapeVar: "call-object",
    shape: "the floor routed as this Worker's spine routes a call: the Call's socket goes to a new object per call, which asks the host's object for an answerer by RPC; the answerer's Worker opens a second socket, to the call's object, which then sends the offer; CallUpdate goes to the call's object. No auth, storage or Connect library",
  },
  connectEs: {
    label: "floor + connect-es", shapeVar: "connect-es",
    shape: "the floor with its Connect framing done by connect-es and protobuf-es, as this Worker's doors do (a router made once, the generated SignalingService, connect-es's own fetch adapter): the same objects, routing and bytes between Worker and object, no auth, storage or object per call",
  },
  offerFirst: {
    label: "object per call, offer handed out first", shapeVar: "call-object-offer-first",
    shape: "as the object-per-call experiment, but the call's object passes the offer in the RPC that rings the host's object, which pushes it down the answerer's socket: the machine gets the offer while its Worker opens the socket to the call's object in parallel",
  },
};

const over = (a, b) => (typeof a === "number" && typeof b === "number" && b !== 0 ? round(a / b, 2) : null);

/** ours/floor for each headline figure; the throughput step is the one with the most setups/s on each. */
function compare(r, a = "ours", b = "floor") {
  const best = (t) => t.reduce((a, s) => (!a || s.setupsPerSec > a.setupsPerSec ? s : a), null);
  const [o, f] = [best(r[a].throughput), best(r[b].throughput)];
  r = { ours: r[a], floor: r[b] };
  const pair = (ours, floor) => ({ ours, floor, oursOverFloor: over(ours, floor) });
  const roles = new Set([...Object.keys(o?.serverCpuMsPerSetupByProcess ?? {}), ...Object.keys(f?.serverCpuMsPerSetupByProcess ?? {})]);
  return {
    callToCandidateMedianMs: pair(r.ours.latency?.callToCandidateMs.median, r.floor.latency?.callToCandidateMs.median),
    callToCandidateP99Ms: pair(r.ours.latency?.callToCandidateMs.p99, r.floor.latency?.callToCandidateMs.p99),
    callToAnswerMedianMs: pair(r.ours.latency?.callToAnswerMs.median, r.floor.latency?.callToAnswerMs.median),
    legsMedianMs: Object.fromEntries(["offer", "answer", "candidate", "callUpdate"].map((k) => [k, pair(r.ours.latency?.legsMs[k].median, r.floor.latency?.legsMs[k].median)])),
    setupsPerSec: { ...pair(o?.setupsPerSec, f?.setupsPerSec), inFlight: { ours: o?.inFlight, floor: f?.inFlight } },
    loadedCallToCandidateMedianMs: pair(o?.callToCandidateMs.median, f?.callToCandidateMs.median),
    failedCalls: { ours: sumErrors(r.ours), floor: sumErrors(r.floor) },
    serverCpuMsPerSetup: pair(o?.serverCpuMsPerSetup, f?.serverCpuMsPerSetup),
    clientCpuMsPerSetup: pair(o?.clientCpuMsPerSetup, f?.clientCpuMsPerSetup),
    serverCpuMsPerSetupByProcess: Object.fromEntries([...roles].map((role) => [role, pair(o?.serverCpuMsPerSetupByProcess[role] ?? 0, f?.serverCpuMsPerSetupByProcess[role] ?? 0)])),
    healthzMedianMs: pair(r.ours.healthz?.median, r.floor.healthz?.median),
    healthzCpuMs: pair(r.ours.healthz?.serverCpuMsPerRequest, r.floor.healthz?.serverCpuMsPerRequest),
  };
}

function sumErrors(side) {
  const count = (e) => Object.values(e ?? {}).reduce((a, b) => a + b, 0);
  return count(side.latency?.errors) + side.throughput.reduce((n, s) => n + count(s.errors), 0);
}

export function viamFloorTable(r) {
  const c = r.comparison;
  const xs = Object.entries(r.experimentComparisons ?? {});
  // An experiment's columns: its figure and its ratio to the floor, found by the same path in its comparison.
  const paths = new Map();
  const walk = (o, path = []) => { if (o && typeof o === "object") for (const k of Object.keys(o)) { if (o[k] && "ours" in o[k] && "floor" in o[k]) paths.set(o[k], [...path, k]); else walk(o[k], [...path, k]); } };
  walk(c);
  const at = (x, p) => paths.get(p)?.reduce((o, k) => o?.[k], x);
  const row = (what, p, digits = 2) => [what, show(p.ours, digits), show(p.floor, digits), ratio(p.ours, p.floor),
    ...xs.flatMap(([, x]) => [show(at(x, p)?.ours, digits), ratio(at(x, p)?.ours, p.floor)])];
  const inFlight = c.setupsPerSec.inFlight.ours === c.setupsPerSec.inFlight.floor ? c.setupsPerSec.inFlight.ours : `${c.setupsPerSec.inFlight.ours} / ${c.setupsPerSec.inFlight.floor}`;
  const rows = [
    row(`Call → answer → first candidate, one at a time (${r.ours.latency?.callToCandidateMs.n} / ${r.floor.latency?.callToCandidateMs.n} calls): median ms`, c.callToCandidateMedianMs),
    row("Call → answer → first candidate: p99 ms", c.callToCandidateP99Ms),
    row("  of which Call sent → answerer holds the offer: median ms", c.legsMedianMs.offer),
    row("  answer written → caller holds it: median ms", c.legsMedianMs.answer),
    row("  candidate written → caller holds it: median ms", c.legsMedianMs.candidate),
    row("  then CallUpdate(done) round trip: median ms", c.legsMedianMs.callUpdate),
    row(`calls/s, ${r.config.machines} machines × ${r.config.answerersPerMachine} answerers, ${inFlight} in flight`, c.setupsPerSec, 1),
    row("  Call → first candidate under that load: median ms", c.loadedCallToCandidateMedianMs, 1),
    row("server CPU ms per setup (all processes)", c.serverCpuMsPerSetup),
    ...Object.entries(c.serverCpuMsPerSetupByProcess).map(([role, p]) => row(`  ${role}`, p)),
    row("client CPU ms per setup (the bench's own Node process, same client code)", c.clientCpuMsPerSetup),
    [`failed calls (all phases)`, show(c.failedCalls.ours, 0), show(c.failedCalls.floor, 0), "", ...xs.flatMap(([, x]) => [show(x.failedCalls.ours, 0), ""])],
    row(`one plain GET /healthz through the Worker (${r.config.healthzRequests} in a row): median ms`, c.healthzMedianMs, 3),
    row("  server CPU ms per GET /healthz", c.healthzCpuMs),
  ];
  const errors = ["ours", "floor", ...xs.map(([k]) => k)].flatMap((k) => {
    const t = r[k].throughput.flatMap((s) => Object.entries(s.errors).map(([e, n]) => `${e} ${n} at ${s.inFlight} in flight`));
    const l = Object.entries(r[k].latency?.errors ?? {}).map(([e, n]) => `${e} ${n} one at a time`);
    return t.length || l.length ? [`${k}: ${[...l, ...t].join(", ")} (first: ${r[k].latency?.firstError ?? r[k].throughput.find((s) => s.firstError)?.firstError})`] : [];
  });
  return `\n### The Viam exchange against the Viam-shaped floor (bare Worker + one Durable Object per host, Connect framing by hand)\n\n` +
    table(["metric", "this Worker (wrangler dev)", "Viam-shaped floor (wrangler dev)", "ours/floor", ...xs.flatMap(([k]) => [`experiment: ${EXPERIMENTS[k].label}`, "/floor"])], rows) +
    `\n\nSame client for all: goutils' 2-answerer loop per machine; callers Call → answer → candidate → CallUpdate(done) → cancel. The legs are read on the clients' clocks (one process).` +
    xs.map(([k]) => `\nExperiment "${EXPERIMENTS[k].label}": ${EXPERIMENTS[k].shape}.`).join("") +
    (errors.length ? `\nFailed calls: ${errors.join("; ")}.` : "") +
    `\nEach phase in ${r.config.rounds} interleaved rounds; other processes on the machine used ${r.otherProcessesCpuPercent ?? "?"}% of one core meanwhile.`;
}

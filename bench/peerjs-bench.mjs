// The anchor comparison (issue 8): this Worker under `wrangler dev` against PeerJS's own server
// (npm `peer`, PeerServer) doing the same signalling work on the same machine, in one run.
//
// 1. Signalling round trip, offer → answer → first candidate, over `calls` calls, sequential and
//    20 in parallel. What is timed, for each system:
//    - PeerJS: both peers hold an open, registered WebSocket (PeerJS's protocol: OPEN on connect,
//      then JSON {type, dst, payload} messages the server forwards with `src` added). The clock
//      starts when the caller sends OFFER to the callee's id and stops when the caller receives the
//      callee's CANDIDATE; the callee sends ANSWER and then CANDIDATE as soon as the OFFER arrives.
//      In the timed path: 3 WebSocket messages in to the server, 3 out.
//    - This Worker: the caller runs Viam `SignalingService.Call` (gRPC-web over HTTP/1.1, the Viam
//      SDK's protocol); the callee is online on `VoiceService.Connect` (Connect, HTTP/1.1 bidi). The
//      clock starts when the caller sends Call (a new HTTP request on a kept-alive connection, bearer
//      token, rpc-host) and stops when the Call stream yields the `update` stage with the callee's
//      candidate; the callee writes its answer and then its candidate as soon as the offer arrives.
//      In the timed path: the Call request and its server stream, and on the callee's already open
//      stream the offer out, answer and candidate in; inside the Worker, every Durable Object RPC
//      those take (the counting run below lists them).
//    - Not timed for either: connecting and registering. A Voice stream carries one call, so each
//      callee keeps a pool of 2 streams waiting and opens a replacement when one ends; the caller
//      then sends CallUpdate(done) (the Viam SDK's end of an exchange) and the callee's stream ends.
//      Those steps run between calls, outside the clock (a replacement stream may still be
//      registering on the server while the next call runs, as it would in production). PeerJS has
//      no equivalent: its peers stay registered.
//    Calls rotate over several caller/callee identities (16 pairs sequential, 2 per slot in
//    parallel) so no identity exceeds the Worker's 20 requests/s per-identity limit. The call loop
//    and both ends of a Viam call are signaling-bench.mjs's.
//    - The platform floor (floor-bench.mjs): the PeerJS side's exchange on a bare Worker and one
//      Durable Object over hibernatable WebSockets, on its own wrangler dev, timed the same way in
//      the same run, so "ours / floor" separates this Worker's cost from the runtime's.
// 2. Memory per idle connection: the RSS of each server's whole process tree (/proc VmRSS summed
//    over its process group; for wrangler dev its Node process and both workerd processes) before
//    and after opening 100, 500, 1000 idle connections (cumulative ramp): PeerJS WebSocket peers;
//    Voice Connect streams waiting for a call (one identity each: N callees online); Viam Answer
//    streams waiting for a call (heartbeats-allowed, one host identity each: N machines online
//    with one answerer each); audio-relay WebSockets (rooms of two, not paired).
// 3. Billed requests per completed call setup and per minute of relayed audio, counted on a second,
//    instrumented wrangler dev (bench/billing.mjs), then the cost per 1 M calls.
//
// bench/run.mjs runs it (BENCH_ONLY=peerjs: it alone) on the wrangler dev it started, and keeps its
// results under "peerjs" in bench/results.json, the floor's under "floor" (floorTable prints it).
import http from "node:http";
import { signToken } from "../scripts/dev-token.mjs";
import WebSocket from "ws";
import { costs, countAudio, countCalls, PRICES, startCountingWrangler } from "./billing.mjs";
import { ANSWER_SDP, CANDIDATE, OFFER_SDP } from "./fixtures.mjs";
import { FLOOR_PATH, floorSignaling, startFloor } from "./floor-bench.mjs";
import { groupCpu, groupRss, settle, startBaseline, startWrangler, stop } from "./processes.mjs";
import { workerClients } from "./protos.mjs";
import { comparisonTable, log, pkgVersion, ratio, show, table } from "./report.mjs";
import { audioRoomUrl } from "./seed003-client.mjs";
import { runSlots, waitingAnswerer, workerSlot } from "./signaling-bench.mjs";
import { round, sleep } from "./stats.mjs";
import { openWebSocket } from "./websocket-client.mjs";

const CALL_TIMEOUT_MS = 15_000;

// ---- PeerJS side --------------------------------------------------------------------------------

/** One PeerJS peer over its WebSocket: resolves once the server has sent OPEN. */
class PeerjsPeer {
  constructor(ws, id) {
    this.ws = ws;
    this.id = id;
    this.handlers = new Set();
    ws.on("message", (data) => {
      const m = JSON.parse(data);
      for (const h of this.handlers) h(m);
    });
  }

  static open(wsBase, id) {
    // Listening before the socket is open: the server sends OPEN at once, possibly in the same
    // packet as the upgrade response.
    const ws = new WebSocket(`${wsBase}/peerjs?key=peerjs&id=${encodeURIComponent(id)}&token=${Math.random().toString(36).slice(2)}`, { perMessageDeflate: false });
    return new Promise((resolvePeer, reject) => {
      const timer = setTimeout(() => { ws.terminate(); reject(new Error(`PeerJS peer ${id}: no OPEN in 10 s`)); }, 10_000);
      ws.once("error", (err) => { clearTimeout(timer); reject(err); });
      ws.once("message", (data) => {
        clearTimeout(timer);
        const m = JSON.parse(data);
        if (m.type !== "OPEN") { ws.terminate(); reject(new Error(`PeerJS peer ${id}: ${JSON.stringify(m)}`)); return; }
        resolvePeer(new PeerjsPeer(ws, id));
      });
    });
  }

  send(type, dst, payload) { this.ws.send(JSON.stringify({ type, dst, payload })); }
  heartbeat() { if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: "HEARTBEAT" })); }
  close() { this.ws.terminate(); }
}

/** A PeerJS callee: answers every OFFER with ANSWER then one CANDIDATE, as a browser peer would. */
function peerjsCallee(peer) {
  peer.handlers.add((m) => {
    if (m.type !== "OFFER") return;
    const { connectionId } = m.payload;
    peer.send("ANSWER", m.src, { sdp: { type: "answer", sdp: ANSWER_SDP }, type: "media", connectionId, browser: "bench" });
    peer.send("CANDIDATE", m.src, { candidate: CANDIDATE, type: "media", connectionId });
  });
}

/** One PeerJS slot: a caller and a callee peer; `call()` times OFFER → ANSWER and → first CANDIDATE. */
async function peerjsSlot(wsBase, name) {
  const [caller, callee] = await Promise.all([PeerjsPeer.open(wsBase, `${name}-caller`), PeerjsPeer.open(wsBase, `${name}-callee`)]);
  peerjsCallee(callee);
  const waiting = new Map();
  caller.handlers.add((m) => waiting.get(m.payload?.connectionId)?.(m));
  let n = 0;
  return {
    async call() {
      const connectionId = `mc_${name}_${++n}`;
      let answerMs = null;
      const t0 = performance.now();
      const got = new Promise((resolveCall, reject) => {
        const timer = setTimeout(() => reject(new Error("PeerJS call timed out")), CALL_TIMEOUT_MS);
        waiting.set(connectionId, (m) => {
          if (m.type === "ANSWER") answerMs = performance.now() - t0;
          else if (m.type === "CANDIDATE") { clearTimeout(timer); resolveCall(m); }
          else { clearTimeout(timer); reject(new Error(`PeerJS caller got ${m.type}`)); }
        });
      });
      caller.send("OFFER", callee.id, { sdp: { type: "offer", sdp: OFFER_SDP }, type: "media", connectionId, browser: "bench", metadata: null });
      const m = await got;
      const candidateMs = performance.now() - t0;
      waiting.delete(connectionId);
      if (answerMs === null || m.payload.candidate.candidate !== CANDIDATE.candidate) throw new Error("PeerJS: answer missing or candidate changed");
      return { ms: candidateMs, answerMs, retries: 0 };
    },
    close() { caller.close(); callee.close(); },
  };
}

// ---- signalling: the same exchange on both --------------------------------------------------------

async function peerjsSignaling({ wsBase, calls, concurrency, deadline, cpu }) {
  const run = `c${concurrency}-${Date.now().toString(36)}`;
  return runSlots(concurrency, (i) => peerjsSlot(wsBase, `pj-${run}-${i}`), { calls, warmup: concurrency === 1 ? 20 : 2, deadline, cpu });
}

/** Viam SDK callers (gRPC-web, one keep-alive pool: calls reuse connections, every open Voice
 * stream holds one) to Voice callees with a pool of 2 streams each, replaced once an exchange ends. */
async function workerSignaling({ baseUrl, protos, secret, calls, concurrency, deadline, cpu }) {
  const clients = workerClients(protos, baseUrl, { viam: "grpc-web", ownAgent: true });
  const run = `c${concurrency}-${Date.now().toString(36)}`;
  const pairs = concurrency === 1 ? 16 : 2;
  try {
    return await runSlots(concurrency, (i) => workerSlot({
      clients, secret, name: `pj-${run}-${i}`, pairs, host: { door: "voice", streams: 2, replace: "on-end" }, candidate: CANDIDATE,
    }), { calls, warmup: 1, deadline, cpu });
  } finally {
    await sleep(200);
    clients.close();
  }
}

// ---- memory per idle connection -----------------------------------------------------------------------

async function inBatches(n, from, batch, open) {
  for (let i = from; i < n; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, n - i) }, (_, j) => open(i + j)));
  }
}

/**
 * Opens idle connections up to each step of `steps` (cumulative), waits for the server to go quiet,
 * and reads its group's RSS. `open(i)` opens connection i; `closeAll()` closes every one.
 */
async function memoryRamp({ server, steps, open, closeAll, label }) {
  await settle([server], { maxMs: 10_000 });
  const before = groupRss(server);
  const points = [];
  let opened = 0;
  try {
    for (const n of steps) {
      const t0 = performance.now();
      await inBatches(n, opened, 50, open);
      opened = n;
      const openMs = performance.now() - t0;
      await settle([server], { maxMs: 10_000 });
      await sleep(500);
      const rss = groupRss(server);
      const point = {
        connections: n, openSeconds: round(openMs / 1000, 2), rssKiB: rss.total, rssKiBByProcess: rss.byRole,
        kibPerConnection: round((rss.total - before.total) / n, 1),
        kibPerConnectionByProcess: Object.fromEntries(Object.entries(rss.byRole).map(([role, kib]) => [role, round((kib - (before.byRole[role] ?? 0)) / n, 1)])),
      };
      points.push(point);
      log(`  ${label}: ${n} open (${point.openSeconds} s to open), RSS ${(rss.total / 1024).toFixed(1)} MiB, ${point.kibPerConnection} KiB per connection ${JSON.stringify(point.kibPerConnectionByProcess)}`);
    }
  } finally {
    await closeAll();
    await settle([server], { maxMs: 15_000 }); // the next ramp on this server starts from quiet
  }
  const [a, b] = [points[points.length - 2], points[points.length - 1]];
  const marginal = a && b ? round((b.rssKiB - a.rssKiB) / (b.connections - a.connections), 1) : null;
  return { rssKiBBefore: before.total, rssKiBBeforeByProcess: before.byRole, points, marginalKiBPerConnection: marginal };
}

async function peerjsMemory({ server, steps }) {
  const peers = [];
  const run = Date.now().toString(36);
  // PeerJS clients heartbeat every 5 s (peerjs' pingInterval); the server drops a peer after 90 s without.
  const beat = setInterval(() => { for (const p of peers) p.heartbeat(); }, 5_000);
  try {
    return await memoryRamp({
      server, steps, label: "PeerJS WebSocket peers",
      open: async (i) => { peers.push(await PeerjsPeer.open(server.url, `mem-${run}-${i}`)); },
      closeAll: async () => { for (const p of peers) p.close(); },
    });
  } finally {
    clearInterval(beat);
  }
}

/** Waiting callee streams, one identity each: Voice Connect streams, or (`door` "viam") Viam
 * Answer streams with heartbeats-allowed, each for its own host. */
async function answererMemory({ server, protos, secret, steps, door }) {
  const clients = workerClients(protos, server.baseUrl, { viam: "grpc-web", ownAgent: true });
  const aborts = [];
  const run = `${door}-${Date.now().toString(36)}`;
  let failed = null;
  try {
    return await memoryRamp({
      server, steps, label: door === "viam" ? "Viam Answer streams" : "Voice Connect streams",
      open: async (i) => {
        const abort = new AbortController();
        aborts.push(abort);
        const identity = `mem-${run}-${i}`;
        const headers = { authorization: `Bearer ${await signToken(identity, secret)}`, "rpc-host": identity };
        waitingAnswerer(clients, door, headers, abort.signal, (err) => { failed ??= err; });
        await sleep(0); // the request is on its way; the stream then waits for a call that never comes
      },
      closeAll: async () => { for (const a of aborts) a.abort(); await sleep(300); clients.close(); },
    }).then((r) => ({ ...r, failed: failed ? String(failed) : null }));
  } finally {
    for (const a of aborts) a.abort();
  }
}

/** The platform floor of a waiting answerer (bench/floor/worker.js `/wait`): a held streaming
 * response and one hibernatable socket to its host's object, one host each. */
async function floorAnswererMemory({ server, steps }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const requests = [];
  const run = Date.now().toString(36);
  let failed = null;
  try {
    return await memoryRamp({
      server, steps, label: "floor: waiting answerers",
      open: (i) => new Promise((resolve) => {
        const req = http.get(`${server.baseUrl}/wait?host=mem-${run}-${i}`, { agent }, (res) => {
          if (res.statusCode !== 200) failed ??= new Error(`floor /wait answered ${res.statusCode}`);
          res.resume();
          resolve();
        });
        req.on("error", (err) => { failed ??= err; resolve(); });
        requests.push(req);
      }),
      closeAll: async () => { for (const r of requests) r.destroy(); await sleep(300); agent.destroy(); },
    }).then((r) => ({ ...r, failed: failed ? String(failed) : null }));
  } finally {
    for (const r of requests) r.destroy();
  }
}

async function relayMemory({ server, secret, steps }) {
  const sockets = [];
  const run = Date.now().toString(36);
  return memoryRamp({
    server, steps, label: "audio-relay WebSockets",
    open: async (i) => { sockets.push(await openWebSocket(await audioRoomUrl(server, `mem-${run}-${i >> 1}`, `mem-${run}-${i}`, secret))); },
    closeAll: async () => { for (const s of sockets) s.terminate(); },
  });
}

// ---- table ------------------------------------------------------------------------------------------

const RUNTIME = "workerd (Worker runtime)";

/** KiB per connection of a memory ramp at its `n`-connections step: the whole tree's, or with
 * `role` one process role's (processes.mjs roleOf). */
function kibPerConnectionAt(ramp, n, role) {
  const point = ramp?.points.find((pt) => pt.connections === n);
  return role ? point?.kibPerConnectionByProcess[role] : point?.kibPerConnection;
}

function buildRows(j) {
  const rows = [];
  const s = j.signaling;
  for (const [key, label] of [["sequential", "sequential"], ["concurrent", `${j.config.concurrency} in parallel`]]) {
    const o = s.ours[key], p = s.peerjs[key];
    if (!o || !p || o.error) continue;
    rows.push([`offer→first candidate, ${label} (${o.n} / ${p.n} calls): median ms`, o.median, p.median]);
    rows.push([`offer→first candidate, ${label}: p99 ms`, o.p99, p.p99]);
    rows.push([`offer→answer, ${label}: median ms`, o.toAnswer?.median, p.toAnswer?.median]);
    rows.push([`calls/s, ${label}`, o.callsPerSec, p.callsPerSec]);
    rows.push([`server CPU ms per call, ${label}`, o.serverCpuMsPerCall, p.serverCpuMsPerCall]);
  }
  const m = j.memory;
  const at = kibPerConnectionAt;
  const peerAt = (n) => at(m.peerjs, n);
  for (const [key, what] of [["oursVoice", "Voice stream waiting"], ["oursViam", "Viam Answer stream waiting"], ["oursRelay", "audio-relay WebSocket"]]) {
    if (!m[key]) continue;
    for (const n of j.config.connections) {
      rows.push([`RSS per idle connection, ${n} open: ${what} (whole wrangler dev tree) vs PeerJS peer: KiB`, at(m[key], n), peerAt(n)]);
    }
    const top = j.config.connections[j.config.connections.length - 1];
    rows.push([`RSS per idle connection, ${top} open: ${what} (Worker runtime process only) vs PeerJS peer: KiB`, at(m[key], top, RUNTIME), peerAt(top)]);
    rows.push([`RSS added per connection, last ramp step: ${what} (whole tree) vs PeerJS peer: KiB`, m[key]?.marginalKiBPerConnection, m.peerjs?.marginalKiBPerConnection]);
  }
  rows.push(["server RSS before the ramps: MiB", m.oursVoice ? round(m.oursVoice.rssKiBBefore / 1024, 1) : null, m.peerjs ? round(m.peerjs.rssKiBBefore / 1024, 1) : null]);
  const b = j.billing;
  if (b) {
    rows.push(["billed Worker requests per call setup (counted)", b.setup.workerRequests, "n/a (self-hosted)"]);
    rows.push([`billed Durable Object requests per call setup (${b.setup.doRpcAndFetch} RPCs + ${b.setup.doAlarmsCounted} alarm counted + ${b.setup.doAlarmsDerived} alarms derived)`, b.setup.doRequests, "n/a"]);
    rows.push(["SQLite rows written per call setup (counted, incl. alarm writes)", round(b.setup.rowsWritten + b.setup.alarmWrites, 1), "n/a"]);
    if (b.setup.doActiveSecondsCounted !== null) {
      rows.push([`Durable Object active seconds per call setup (counted over the ${b.setup.countWindowSeconds} s count, ${Object.entries(b.setup.doActiveSecondsByClass).map(([k, v]) => `${k} ${v}`).join(", ")})`, b.setup.doActiveSecondsCounted, "n/a"]);
    }
    rows.push(["cost per 1 M call setups, USD (requests + rows + duration)", b.setup.costPerMillionCallsUsd.total, "n/a"]);
    rows.push([`cost per 1 M call setups with CPU billed (${b.setup.cpuMsPerSetup} CPU-ms a setup, local, dev proxy included), USD`, b.setup.costPerMillionCallsUsd.totalWithCpu, "n/a"]);
    rows.push(["billed DO requests per minute of relayed audio (WS in at 20:1 + alarms)", b.audio.billedDoRequestsPerMinute, "n/a"]);
    rows.push(["cost per 1 M minutes of relayed audio, USD", b.audio.costPerMillionMinutesUsd.total, "n/a"]);
    rows.push(["object cost of one callee online for 30 days (a hibernated socket: see the idle part), USD", b.onlineCallee.usdPer30Days, "n/a"]);
  }
  return rows.map(([metric, ours, peerjs]) => [metric, ours ?? null, peerjs ?? null, ratio(ours, peerjs)]);
}

/** The comparison's table, from the rows runPeerjsComparison keeps in its results. */
export function peerjsTable(results) {
  return comparisonTable(`This Worker (wrangler dev) vs PeerJS server (npm peer ${results.config.peer})`, "PeerJS server",
    results.rows.map(([metric, ours, peerjs]) => [metric, ours, peerjs, null]), "PeerJS"); // the values are rounded where computed
}

/** Ours, the floor and PeerJS side by side for the exchange, per run (sequential, concurrent). */
function floorComparison(j) {
  const out = {};
  for (const key of ["sequential", "concurrent"]) {
    const o = j.signaling.ours[key], f = j.floor[key], p = j.signaling.peerjs[key];
    if (!f) continue;
    const ok = o && !o.error ? o : null;
    const of = (r, stat) => (stat === "toAnswer" ? r?.toAnswer?.median : r?.[stat]) ?? null;
    out[key] = Object.fromEntries(["median", "p99", "toAnswer", "serverCpuMsPerCall"].map((stat) => {
      const [ours, floor, peerjs] = [of(ok, stat), of(f, stat), of(p, stat)];
      return [stat, { ours, floor, peerjs, oursOverFloor: ours && floor ? round(ours / floor, 2) : null, oursOverPeerjs: ours && peerjs ? round(ours / peerjs, 2) : null }];
    }));
    out[key].calls = { ours: ok?.n ?? null, floor: f.n, peerjs: p?.n ?? null };
  }
  // RSS per waiting answerer at the ramp's top step: whole wrangler dev tree and runtime process.
  const fm = j.floor.memory?.waitingAnswerer;
  const top = j.config.connections[j.config.connections.length - 1];
  const at = (r, role) => kibPerConnectionAt(r, top, role) ?? null;
  if (fm) {
    out.memory = { connections: top };
    for (const [key, door] of [["voice", "oursVoice"], ["viam", "oursViam"]]) {
      for (const [scope, role] of [["tree", null], ["runtime", RUNTIME]]) {
        const [ours, floor, peerjs] = [at(j.memory[door], role), at(fm, role), at(j.memory.peerjs)];
        out.memory[`${key}:${scope}`] = { ours, floor, peerjs, oursOverFloor: ours && floor ? round(ours / floor, 2) : null, oursOverPeerjs: ours && peerjs ? round(ours / peerjs, 2) : null };
      }
    }
  }
  return out;
}

/** The platform floor's table: this Worker, the floor and PeerJS for the same exchange. */
export function floorTable(floor) {
  const rows = [];
  for (const [key, label] of [["sequential", "sequential"], ["concurrent", `${floor.config.concurrency} in parallel`]]) {
    const c = floor.comparison?.[key];
    if (!c) continue;
    const n = `${c.calls.ours ?? "—"} / ${c.calls.floor} / ${c.calls.peerjs ?? "—"} calls`;
    for (const [stat, what] of [["median", `offer→first candidate, ${label} (${n}): median ms`], ["p99", `offer→first candidate, ${label}: p99 ms`],
      ["toAnswer", `offer→answer, ${label}: median ms`], ["serverCpuMsPerCall", `server CPU ms per call, ${label}`]]) {
      const v = c[stat];
      rows.push([what, show(v.ours), show(v.floor), show(v.peerjs), ratio(v.ours, v.floor), ratio(v.ours, v.peerjs)]);
    }
  }
  const m = floor.comparison?.memory;
  if (m) {
    for (const [key, what] of [["voice:tree", "Voice stream waiting, whole wrangler dev tree"], ["voice:runtime", "Voice stream waiting, runtime process only"],
      ["viam:tree", "Viam Answer stream waiting, whole tree"], ["viam:runtime", "Viam Answer stream waiting, runtime process only"]]) {
      const v = m[key];
      rows.push([`RSS per waiting answerer, ${m.connections} open: ${what} (floor: held response + hibernated socket; PeerJS: peer): KiB`,
        show(v.ours), show(v.floor), show(v.peerjs), ratio(v.ours, v.floor), ratio(v.ours, v.peerjs)]);
    }
  }
  return `\n### Platform floor: the same exchange on a bare Worker + one Durable Object (hibernatable WebSockets)\n\n` +
    table(["metric", "this Worker (wrangler dev)", "floor (wrangler dev)", "PeerJS server", "ours/floor", "ours/PeerJS"], rows);
}

// ---- the comparison ---------------------------------------------------------------------------------

/**
 * Runs the comparison against `server`, the wrangler dev processes.mjs startWrangler started
 * (`ref`, as bench/run.mjs BENCH_REF, builds the helper instances from the same commit). Starts
 * and stops its own PeerJS server, the platform floor (floor-bench.mjs) and three helper wrangler
 * dev instances of the same Worker: one instrumented to count billed requests, two fresh for the
 * memory ramps (Voice then audio relay on one, Viam on the other; so they start from a runtime no
 * benchmark has filled, and the measured one is not left holding thousands of objects).
 * Returns its results; peerjsTable(results) and floorTable(results.floor) are its tables.
 *
 * Order: counting and the memory ramps first, side by side (counts and RSS do not depend on CPU
 * contention; each ramp waits for its own server to go quiet before reading), then the helpers
 * stop and signalling runs alone on `server` (and the floor) with whatever is left of
 * `budgetSeconds` (counted from the start, helpers' start included): PeerJS and the floor always
 * complete `calls`; this Worker's sequential run gets 70 % of the time left and its parallel run
 * the rest, and each stops at its share (the table shows n).
 */
export async function runPeerjsComparison({ server, authSecret, protos, ref = null, calls, connections, budgetSeconds, concurrency }) {
  const started = performance.now();
  const deadline = started + budgetSeconds * 1000;
  log(`PeerJS comparison: starting PeerJS server (peer ${pkgVersion("peer")}), the platform floor, a counting wrangler dev and a fresh wrangler dev for memory`);
  const helpers = await Promise.allSettled([
    startBaseline("peerjs-server.mjs", "PeerJS server"),
    startCountingWrangler(authSecret, { ref }),
    startWrangler(authSecret, { ref, name: "wrangler dev (memory)" }),
    startFloor(authSecret),
    // The Viam ramp gets an instance of its own: after another ramp the runtime reuses the heap
    // that ramp grew, and the second ramp would read as cheaper than it is.
    startWrangler(authSecret, { ref, name: "wrangler dev (memory, Viam)" }),
    // So does the floor's waiting-answerer ramp, which must not leave the floor under test holding
    // a thousand objects.
    startFloor(authSecret, "wrangler dev (floor, memory)"),
  ]);
  const failed = helpers.find((h) => h.status === "rejected");
  if (failed) {
    await Promise.all(helpers.filter((h) => h.status === "fulfilled").map((h) => stop(h.value)));
    throw failed.reason;
  }
  const [peerjs, counting, memoryWorker, floor, memoryViam, memoryFloor] = helpers.map((h) => h.value);
  const cpuOf = (s) => () => groupCpu(s);
  const json = {
    note: "Both servers on loopback on the same machine as the clients. wrangler dev measures the local workerd runtime behind wrangler's dev proxy, not Cloudflare's edge.",
    config: { calls, concurrency, connections, budgetSeconds, peer: pkgVersion("peer") },
    measuredPath: {
      peerjs: "caller sends OFFER (WebSocket) → server forwards → callee sends ANSWER and CANDIDATE → server forwards both → caller receives CANDIDATE. Peers connected and registered before the clock starts.",
      ours: "caller sends Viam SignalingService.Call (gRPC-web, HTTP/1.1 kept-alive, bearer JWT) → Worker starts the call object, hands the offer to the callee's waiting VoiceService.Connect stream → callee writes answer and candidate → Call stream yields init (answer) then update (candidate). Callee streams opened and registered before the clock starts (a pool of 2 per callee); CallUpdate(done) and the callee's replacement stream happen between calls, outside the clock.",
    },
    billing: null, memory: {}, signaling: { ours: {}, peerjs: {} }, prices: PRICES,
    floor: { measuredPath: FLOOR_PATH, config: { calls, concurrency } },
  };
  let callCount = null, audioCount = null;
  try {
    // 1 + 2. Billed requests (counting instance) and memory (PeerJS; the fresh instance), side by side.
    const steps = connections.filter((n) => n > 0).sort((a, b) => a - b);
    const countingDone = (async () => {
      callCount = await countCalls(counting, protos, authSecret, 20);
      audioCount = await countAudio(counting, authSecret, 5);
      await stop(counting);
      json.billing = { ...costs(callCount, audioCount, null), raw: { calls: callCount, audio: audioCount } };
      const bs = json.billing.setup;
      log(`  counted per call setup: ${bs.workerRequests} Worker requests ${JSON.stringify(bs.workerRequestsByPath)}; ${bs.doRequests} billed DO requests: RPCs ${JSON.stringify(bs.doRequestsByMethod)}, ${bs.doAlarmsCounted} alarms counted + ${bs.doAlarmsDerived} derived; ${bs.rowsWritten} rows written ${JSON.stringify(bs.rowsWrittenByClass)} + ${bs.alarmWrites} alarm writes`);
      log(`  counted relayed audio: ${json.billing.audio.wsMessagesInCounted} WebSocket messages in for ${audioCount.framesSent} frames sent in ${audioCount.seconds} s; ${json.billing.audio.roomAlarmsCounted} room alarms`);
    })();
    log("counting billed requests (20 call setups, 5 s of relayed audio) while the memory ramps run");
    const peerjsRamp = peerjsMemory({ server: peerjs, steps }).then((r) => { json.memory.peerjs = r; });
    const viamRamp = answererMemory({ server: memoryViam, protos, secret: authSecret, steps, door: "viam" })
      .then(async (r) => { json.memory.oursViam = r; await stop(memoryViam); });
    const floorRamp = floorAnswererMemory({ server: memoryFloor, steps })
      .then(async (r) => { json.floor.memory = { waitingAnswerer: r }; await stop(memoryFloor); });
    json.memory.oursVoice = await answererMemory({ server: memoryWorker, protos, secret: authSecret, steps, door: "voice" });
    json.memory.oursRelay = await relayMemory({ server: memoryWorker, secret: authSecret, steps });
    await Promise.all([viamRamp, floorRamp]);
    await Promise.all([countingDone, peerjsRamp]);
    await stop(memoryWorker);

    // 3. Signalling, alone.
    const ourShare = { sequential: 0.7, concurrent: 1 };
    for (const [key, c] of [["sequential", 1], ["concurrent", concurrency]]) {
      await settle([server, peerjs, floor], { maxMs: 8_000 });
      log(`signalling ${key}: PeerJS`);
      const p = json.signaling.peerjs[key] = await peerjsSignaling({ wsBase: peerjs.url, calls, concurrency: c, deadline: performance.now() + 30_000, cpu: cpuOf(peerjs) });
      log(`  ${p.n} calls: →candidate median ${p.median} ms, p99 ${p.p99} ms; →answer median ${p.toAnswer?.median} ms; ${p.callsPerSec} calls/s; ${p.serverCpuMsPerCall} CPU ms/call`);
      await settle([server, peerjs, floor], { maxMs: 8_000 });
      log(`signalling ${key}: platform floor (bare Worker + one Durable Object, hibernatable WebSockets)`);
      const f = json.floor[key] = await floorSignaling({ server: floor, calls, concurrency: c, deadline: performance.now() + 30_000, cpu: cpuOf(floor) });
      log(`  ${f.n} calls: →candidate median ${f.median} ms, p99 ${f.p99} ms; →answer median ${f.toAnswer?.median} ms; ${f.callsPerSec} calls/s; ${f.serverCpuMsPerCall} CPU ms/call ${JSON.stringify(f.serverCpuMsPerCallByProcess)}`);
      await settle([server, peerjs, floor], { maxMs: 8_000 });
      const until = performance.now() + Math.max(5_000, (deadline - performance.now()) * ourShare[key]);
      log(`signalling ${key}: this Worker (Viam Call → Voice Connect), until ${((until - started) / 1000).toFixed(0)} s into the comparison`);
      try {
        const o = json.signaling.ours[key] = await workerSignaling({ baseUrl: server.baseUrl, protos, secret: authSecret, calls, concurrency: c, deadline: until, cpu: cpuOf(server) });
        log(`  ${o.n} calls: →candidate median ${o.median} ms, p99 ${o.p99} ms; →answer median ${o.toAnswer?.median} ms; ${o.callsPerSec} calls/s; ${o.serverCpuMsPerCall} CPU ms/call ${JSON.stringify(o.serverCpuMsPerCallByProcess)}; ${o.notFoundRetries} not_found retries, ${o.errors} errors`);
      } catch (err) {
        json.signaling.ours[key] = { error: String(err) };
        log(`  failed: ${err}\n--- wrangler dev log (tail) ---\n${server.log().slice(-3000)}`);
      }
    }
    // The call object's active time in the cost: this run's sequential median.
    if (callCount && audioCount) json.billing = { ...costs(callCount, audioCount, json.signaling.ours), raw: json.billing.raw };
  } finally {
    await Promise.all([stop(peerjs), stop(counting), stop(memoryWorker), stop(floor), stop(memoryViam), stop(memoryFloor)]);
  }
  json.durationSeconds = round((performance.now() - started) / 1000, 1);
  json.rows = buildRows(json);
  json.floor.comparison = floorComparison(json);
  return json;
}

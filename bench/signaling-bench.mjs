// Signaling benchmark: time from sending a call's offer until the caller holds the answer.
//
// This Worker: the caller runs Viam `SignalingService.Call` (Connect protocol, HTTP/1.1); the
// host answers on a Viam `Answer` stream or on a Voice `Connect` stream (calls rotate over a few
// caller/host identities, see workerSlot). A host keeps one stream
// waiting; when an offer arrives it opens the next one at once (as Viam hosts do), so the next
// call finds it registered. A stream is registered a few ms after it opens and nothing tells the
// client when, so a Call that still finds no answerer (not_found) is retried; retries are counted
// and only the successful attempt is timed.
//
// Baseline (bench/node-ws-signaling.mjs): caller and host each keep one WebSocket open; the
// caller sends the offer, the server forwards it, the host answers, the server forwards it back.
//
// runSlots, viamCall and onlineCallee are the call loop and the two ends of a Viam call that the
// PeerJS comparison (peerjs-bench.mjs) drives too.
import { Code, ConnectError } from "@connectrpc/connect";
import { createWritableIterable } from "@connectrpc/connect/protocol";
import { signToken } from "../scripts/dev-token.mjs";
import { ANSWER_SDP, OFFER_SDP } from "./fixtures.mjs";
import { cpuBetween } from "./processes.mjs";
import { workerClients } from "./protos.mjs";
import { sleep, summarize, round } from "./stats.mjs";
import { openWebSocket } from "./websocket-client.mjs";

const NOT_FOUND_RETRY_MS = 5;
/** 2 s of not_found before a host counts as never online: a stream registers within milliseconds. */
const NOT_FOUND_RETRIES = 400;
const CALL_TIMEOUT_MS = 15_000;

/**
 * Opens `concurrency` slots (`openSlot(i)`), runs `calls` calls over them (one call at a time per
 * slot) after `warmup` unmeasured calls per slot, and closes them. Stops early at `deadline`
 * (performance.now() time). `cpu()` reads the server's CPU (processes.mjs groupCpu). A slot's
 * `call()` resolves to { ms, retries } and, where the answer is not the end of what is timed, the
 * time to the answer as `answerMs` (summarized as `toAnswer`).
 */
export async function runSlots(concurrency, openSlot, { calls, warmup, deadline, cpu }) {
  const slots = await Promise.all(Array.from({ length: concurrency }, (_, i) => openSlot(i)));
  try {
    // Every identity of a slot is warmed up (its objects created) before anything is timed.
    await Promise.all(slots.map(async (slot) => { for (let i = 0; i < Math.max(warmup, slot.warmupCalls ?? 0); i++) await slot.call(); }));
    const latencies = [], toAnswer = [];
    let started = 0, retries = 0, errors = 0, firstError = null;
    const cpuBefore = cpu();
    const t0 = performance.now();
    await Promise.all(slots.map(async (slot) => {
      while (started < calls && performance.now() < deadline) {
        started++;
        try {
          const r = await slot.call();
          latencies.push(r.ms);
          if (r.answerMs !== undefined) toAnswer.push(r.answerMs);
          retries += r.retries;
        } catch (err) {
          errors++;
          firstError ??= String(err);
          if (errors > Math.max(5, calls / 20)) throw new Error(`too many failed calls; first: ${firstError}`);
        }
      }
    }));
    const wallMs = performance.now() - t0;
    const cpuPerCall = cpuBetween(cpuBefore, cpu(), Math.max(1, latencies.length));
    return {
      ...summarize(latencies), ...(toAnswer.length > 0 && { toAnswer: summarize(toAnswer) }), concurrency,
      callsPerSec: round(latencies.length / (wallMs / 1000), 1), notFoundRetries: retries, errors, firstError,
      truncated: latencies.length + errors < calls, serverCpuMsPerCall: cpuPerCall.total, serverCpuMsPerCallByProcess: cpuPerCall.byRole,
    };
  } finally {
    for (const slot of slots) slot.close();
  }
}

// ---- this Worker ---------------------------------------------------------------------------

/**
 * A callee online on `door` ("viam": Answer streams; "voice": Connect streams), keeping `streams`
 * streams waiting. Each stream takes one offer: it writes the answer and `candidate`, if given (on
 * Viam as an update stage, then done, as goutils' answerer does), and ends its side. Its replacement opens as soon as the offer arrives (`replace:
 * "on-offer"`, as Viam hosts do, so the next call finds it registered) or once the exchange has
 * ended (`"on-end"`). `state` counts streams opened and offers answered.
 */
export function onlineCallee(clients, headers, { door = "voice", streams = 1, candidate = null, replace = "on-offer", onError }) {
  let stopped = false;
  const live = new Set();
  const state = { answered: 0, opened: 0 };
  function open() {
    if (stopped) return;
    const outbox = createWritableIterable();
    const abort = new AbortController();
    live.add(abort);
    state.opened++;
    let answered = false;
    const take = () => {
      answered = true;
      state.answered++;
      if (replace === "on-offer") open(); // the next call's stream registers while this call finishes
    };
    (async () => {
      if (door === "viam") {
        for await (const req of clients.signaling.answer(outbox, { headers, signal: abort.signal })) {
          if (req.stage.case !== "init" || answered) continue;
          take();
          await outbox.write({ uuid: req.uuid, stage: { case: "init", value: { sdp: ANSWER_SDP } } });
          if (candidate) await outbox.write({ uuid: req.uuid, stage: { case: "update", value: { candidate: viamCandidate(candidate) } } });
          await outbox.write({ uuid: req.uuid, stage: { case: "done", value: {} } });
          outbox.close();
        }
      } else {
        for await (const signal of clients.voice.connect(outbox, { headers, signal: abort.signal })) {
          if (signal.event.case !== "offer" || answered) continue;
          take();
          await outbox.write({ event: { case: "answer", value: { answer: ANSWER_SDP } } });
          if (candidate) await outbox.write({ event: { case: "candidate", value: { candidate: JSON.stringify(candidate) } } });
          outbox.close(); // Voice has no done message: closing our side is done
        }
      }
    })().catch((err) => { if (!abort.signal.aborted) onError(err); })
      .finally(() => { live.delete(abort); if (replace === "on-end" && !abort.signal.aborted) open(); });
  }
  for (let i = 0; i < streams; i++) open();
  return { state, stop() { stopped = true; for (const a of live) a.abort(); } };
}

/**
 * A callee's stream waiting for a call that never comes, for one identity (`headers`: its bearer
 * token): on "voice" a Connect stream; on "viam" an Answer stream for the host named by the
 * headers' rpc-host, sent with `heartbeats-allowed: true` as goutils' answerer sends it (its
 * heartbeats are read and dropped). Runs until `signal` aborts; `onError` gets a failure before that.
 */
export function waitingAnswerer(clients, door, headers, signal, onError) {
  const outbox = createWritableIterable();
  const stream = door === "viam"
    ? clients.signaling.answer(outbox, { headers: { ...headers, "heartbeats-allowed": "true" }, signal })
    : clients.voice.connect(outbox, { headers, signal });
  (async () => { for await (const _ of stream) { /* heartbeats; no call */ } })().catch((err) => { if (!signal.aborted) onError(err); });
}

/** An RTCIceCandidateInit as Viam's ICECandidate message. */
const viamCandidate = (c) => ({ candidate: c.candidate, sdpMid: c.sdpMid, sdpmLineIndex: c.sdpMLineIndex, usernameFragment: c.usernameFragment });

/**
 * The caller's side of one call, as a Viam SDK makes it: Call, timed to the answer (`answerMs`)
 * and, when `candidate` is given, to that candidate arriving (`candidateMs`); then the stream is
 * drained (it ends once the callee is done) and CallUpdate(done) sent, untimed. A Call that finds
 * no callee registered yet (not_found) is retried (NOT_FOUND_RETRIES, 5 ms apart; with
 * `retryNotFound: false` the not_found error is thrown at once); only the attempt that connects is
 * timed.
 */
export async function viamCall(signaling, headers, { candidate = null, retryNotFound = true } = {}) {
  for (let attempt = 0; attempt <= NOT_FOUND_RETRIES; attempt++) {
    const t0 = performance.now();
    const stream = signaling.call({ sdp: OFFER_SDP }, { headers, timeoutMs: CALL_TIMEOUT_MS })[Symbol.asyncIterator]();
    let first;
    try {
      first = await stream.next();
    } catch (err) {
      if (ConnectError.from(err).code !== Code.NotFound || !retryNotFound) throw err;
      await sleep(NOT_FOUND_RETRY_MS);
      continue;
    }
    const answerMs = performance.now() - t0;
    if (first.done || first.value.stage.case !== "init" || first.value.stage.value.sdp !== ANSWER_SDP) {
      throw new Error(`expected the answer, got ${JSON.stringify(first.value?.stage?.case)}`);
    }
    let candidateMs = null;
    if (candidate) {
      const second = await stream.next();
      candidateMs = performance.now() - t0;
      if (second.done || second.value.stage.case !== "update" || second.value.stage.value.candidate?.candidate !== candidate.candidate) {
        throw new Error(`expected the candidate, got ${JSON.stringify(second.value?.stage?.case)}`);
      }
    }
    while (!(await stream.next()).done) { /* nothing more is timed */ }
    await signaling.callUpdate({ uuid: first.value.uuid, update: { case: "done", value: true } }, { headers, timeoutMs: CALL_TIMEOUT_MS });
    return { answerMs, candidateMs, retries: attempt };
  }
  throw new Error(`${headers["rpc-host"]} never came online`);
}

/**
 * One slot: calls one at a time, each from the next of `pairs` callers to the next of `pairs`
 * hosts, every host online through onlineCallee(`host`: its door, streams, replace). The Worker
 * limits requests per identity (model/limits.ts REQUESTS_PER_SECOND); a call costs its caller
 * two (Call, CallUpdate) and a Voice host one, so spreading a slot's calls over several
 * identities keeps every one of them at a rate a person or robot could honestly reach. With
 * `candidate`, the host sends it after its answer and a call is timed until it arrives.
 */
export async function workerSlot({ clients, secret, name, pairs, host: hostOptions, candidate = null }) {
  let hostError = null;
  const list = await Promise.all(Array.from({ length: pairs }, async (_, i) => {
    const host = `bench-host-${name}-${i}`, caller = `bench-caller-${name}-${i}`;
    // rpc-host on the host's own streams: Viam's Answer names the hosts it answers for; Voice ignores it.
    const hostHeaders = { authorization: `Bearer ${await signToken(host, secret)}`, "rpc-host": host };
    const callerHeaders = { authorization: `Bearer ${await signToken(caller, secret)}`, "rpc-host": host };
    const hostSide = onlineCallee(clients, hostHeaders, { ...hostOptions, candidate, onError: (err) => { hostError ??= err; } });
    return { callerHeaders, hostSide };
  }));
  let next = 0;
  return {
    warmupCalls: pairs,
    async call() {
      if (hostError) throw hostError;
      const r = await viamCall(clients.signaling, list[next++ % pairs].callerHeaders, { candidate });
      return candidate ? { ms: r.candidateMs, answerMs: r.answerMs, retries: r.retries } : { ms: r.answerMs, retries: r.retries };
    },
    close() { for (const { hostSide } of list) hostSide.stop(); },
  };
}

export async function signalingWorker({ server, secret, protos, door, calls, concurrency, warmup, deadline, cpu }) {
  const run = `${door}-c${concurrency}-${Date.now().toString(36)}`;
  // 8 identities per side in all when sequential, 2 per slot in parallel (40 in all).
  const pairs = Math.max(2, Math.ceil(8 / concurrency));
  return runSlots(concurrency, (i) => workerSlot({ clients: workerClients(protos, server.baseUrl), secret, name: `${run}-${i}`, pairs, host: { door } }),
    { calls, warmup, deadline, cpu });
}

// ---- Node ws baseline ----------------------------------------------------------------------

async function baselineSlot(url, host, caller) {
  const hostWs = await openWebSocket(`${url}/?id=${host}`);
  hostWs.on("message", (data) => {
    const m = JSON.parse(data);
    if (m.t === "offer") hostWs.send(JSON.stringify({ t: "answer", to: m.from, id: m.id, sdp: ANSWER_SDP }));
  });
  const callerWs = await openWebSocket(`${url}/?id=${caller}`);
  const waiting = new Map();
  callerWs.on("message", (data) => {
    const m = JSON.parse(data);
    waiting.get(m.id)?.(m);
    waiting.delete(m.id);
  });
  let n = 0;
  return {
    async call() {
      const id = `${caller}-${++n}`;
      const t0 = performance.now();
      const answered = new Promise((resolve) => waiting.set(id, resolve));
      callerWs.send(JSON.stringify({ t: "offer", to: host, id, sdp: OFFER_SDP }));
      const m = await answered;
      const ms = performance.now() - t0;
      if (m.t !== "answer" || m.sdp !== ANSWER_SDP) throw new Error(`expected the answer, got ${m.t}`);
      return { ms, retries: 0 };
    },
    close() { hostWs.terminate(); callerWs.terminate(); },
  };
}

export async function signalingBaseline({ server, calls, concurrency, warmup, deadline, cpu }) {
  const run = `c${concurrency}-${Date.now().toString(36)}`;
  return runSlots(concurrency, (i) => baselineSlot(server.url, `bench-host-${run}-${i}`, `bench-caller-${run}-${i}`),
    { calls, warmup, deadline, cpu });
}

// ---- the floor under both: one empty HTTP exchange ---------------------------------------------

/** Sequential GETs of `url` (this Worker's /healthz; the baseline's HTTP server, which answers 426):
 * what one request costs before any signaling code runs. */
export async function httpFloor(url, { requests, cpu }) {
  const get = async () => { const res = await fetch(url); await res.arrayBuffer(); };
  for (let i = 0; i < 20; i++) await get();
  const latencies = [];
  const before = cpu();
  for (let i = 0; i < requests; i++) {
    const t0 = performance.now();
    await get();
    latencies.push(performance.now() - t0);
  }
  const perRequest = cpuBetween(before, cpu(), requests);
  return { ...summarize(latencies), serverCpuMsPerRequest: perRequest.total, serverCpuMsPerRequestByProcess: perRequest.byRole };
}

// Counting what Cloudflare would bill, from outside the Worker's code: a second `wrangler dev` runs
// the same Worker behind a thin wrapper entry (generated here, nothing in worker/ or
// durable-objects/ changes) that counts
//   - Worker requests: every request reaching the Worker's fetch handler;
//   - Durable Object requests: every method call on a Durable Object stub (each is its own RPC
//     session, billed as one request), `fetch` on a stub included (a WebSocket upgrade to a room),
//     made by the Worker or by one object calling another; every alarm invocation; every incoming
//     WebSocket message an object's handler receives (billed 20:1; auto-answered "ping" frames never
//     reach a handler and are not billed);
//   - SQLite rows read and written (each cursor's rowsRead / rowsWritten; miniflare's own
//     bookkeeping table excluded; a key put, deleted or got through the key-value API, sync or
//     async, as one row), alarm writes, and the alarms still pending (set, not yet fired);
//   - Durable Object active time, per object and summed by class (`activeMs`): wall time during
//     which at least one of the object's handlers is in flight — an RPC method call until it
//     settles, fetch until its Response resolves, a webSocketMessage / webSocketClose / alarm
//     handler until it settles, each timed inside the object (see `counting`). That is when an
//     object cannot hibernate and is billed for duration; a hibernated object with open sockets
//     and no handler running costs nothing.
//     GET /__bench/counts?objects adds `byObject`: each object's active ms, stub requests, WebSocket
//     messages in and alarms, by the name its stub was got by.
// The wrapper replaces `env` (a Proxy whose Durable Object namespaces hand out counting stubs) for
// the Worker and for every object (each exported class is subclassed only to pass the wrapped env
// and to count alarms and WebSocket messages and time their handlers). The classes are those bound
// in the served Worker's wrangler config. Counts live in module globals: workerd runs a Worker and
// its Durable Objects in one isolate, which the counts themselves confirm (object-to-object calls,
// such as CallObject → HostObject.enqueue, show up). GET /__bench/counts reads them, POST
// /__bench/reset zeroes them; neither is counted.
//
// This instance only counts; latency and memory are measured on an uninstrumented Worker.
// countCalls and countAudio drive it; costs() turns the counts into billed requests and US dollars
// at PRICES.
import { signToken } from "../scripts/dev-token.mjs";
import { CANDIDATE } from "./fixtures.mjs";
import { startWrangler } from "./processes.mjs";
import { workerClients } from "./protos.mjs";
import { packet, pairCall, TYPE, WIDEBAND, audioRoomUrl } from "./seed003-client.mjs";
import { onlineCallee, viamCall } from "./signaling-bench.mjs";
import { round, sleep } from "./stats.mjs";
import { openWebSocket } from "./websocket-client.mjs";

/** The Durable Object bindings of a wrangler config (its [[durable_objects.bindings]] tables):
 * binding name → class name. Read from the config of the Worker being served, so an object class
 * added or renamed there is counted without a change here. */
function bindingsOf(toml) {
  const bindings = {};
  for (const [, block] of toml.matchAll(/^\[\[durable_objects\.bindings\]\]\s*\n((?:(?!\[)[^\n]*\n?)*)/gm)) {
    const name = /^name\s*=\s*"([^"]+)"/m.exec(block)?.[1], cls = /^class_name\s*=\s*"([^"]+)"/m.exec(block)?.[1];
    if (name && cls && !/^script_name\s*=/m.test(block)) bindings[name] = cls;
  }
  return bindings;
}

function wrapperSource(entry, toml) {
  const BINDINGS = bindingsOf(toml);
  return `
import worker, * as mod from ${JSON.stringify(entry)};
import { DurableObject } from "cloudflare:workers";

const fresh = () => ({ workerRequests: 0, workerRequestsByPath: {}, doRequests: {}, alarms: {}, wsMessagesIn: {},
  rowsRead: {}, rowsWritten: {}, alarmWrites: {} });
// Alarms set and not yet fired, by class and object id (not reset with the counts).
const pending = {};
let counts = fresh();
const bump = (o, k, n = 1) => { o[k] = (o[k] ?? 0) + n; };
const BINDINGS = ${JSON.stringify(BINDINGS)};
// Stub properties that are not RPC methods.
const PLAIN = new Set(["id", "name", "then", "toJSON", "constructor"]);
// The platform's handlers, wrapped one by one below; webSocketError is not timed.
const HANDLERS = new Set(["alarm", "webSocketMessage", "webSocketClose", "webSocketError"]);

// Active time, per object: wall time during which at least one of its handlers is in flight — an
// RPC method call from start to settle, fetch until its Response resolves (a WebSocket upgrade's
// at once), a webSocketMessage / webSocketClose / alarm handler from start to settle. One in-flight
// counter per object and the time it last went from 0 to 1 give the union of those intervals. Not cleared by a reset, which only
// restarts the clock of objects active at that moment (and zeroes their per-object counts).
const activity = new Map(); // "class:name" → { cls, name, inFlight, since, ms, requests, wsMessagesIn, alarms }
const idNames = new Map(); // object id → the name its stub was got by
const nameOf = (id) => { const s = String(id); try { return id.name ?? idNames.get(s) ?? s; } catch { return idNames.get(s) ?? s; } };
function activityOf(cls, name) {
  const key = cls + ":" + name;
  let a = activity.get(key);
  if (!a) activity.set(key, a = { cls, name, inFlight: 0, since: 0, ms: 0, requests: 0, wsMessagesIn: 0, alarms: 0 });
  return a;
}
function whileActive(a, run) {
  if (a.inFlight++ === 0) a.since = Date.now();
  const exit = () => { if (--a.inFlight === 0) a.ms += Date.now() - a.since; };
  let result;
  try { result = run(); } catch (err) { exit(); throw err; }
  if (result && typeof result.then === "function") result.then(exit, exit);
  else exit();
  return result;
}
function activeSummary(withObjects) {
  const now = Date.now();
  const byClass = {}, objects = {}, list = [];
  for (const a of activity.values()) {
    const ms = a.ms + (a.inFlight > 0 ? now - a.since : 0);
    bump(byClass, a.cls, ms);
    if (ms > 0) bump(objects, a.cls);
    if (withObjects && (ms > 0 || a.requests || a.wsMessagesIn || a.alarms)) list.push({ cls: a.cls, name: a.name, activeMs: ms, requests: a.requests, wsMessagesIn: a.wsMessagesIn, alarms: a.alarms, inFlight: a.inFlight });
  }
  return { activeMs: byClass, activeObjects: objects, ...(withObjects && { byObject: list }) };
}
function resetActivity() {
  const now = Date.now();
  for (const a of activity.values()) { a.ms = 0; a.requests = 0; a.wsMessagesIn = 0; a.alarms = 0; if (a.inFlight > 0) a.since = now; }
}

function countingStub(stub, cls, name) {
  const a = activityOf(cls, name);
  return new Proxy(stub, {
    get(target, prop) {
      if (typeof prop !== "string" || PLAIN.has(prop)) return Reflect.get(target, prop);
      return (...args) => { bump(counts.doRequests, cls + "." + prop); a.requests++; return target[prop](...args); };
    },
  });
}

function countingNamespace(ns, cls) {
  return new Proxy(ns, {
    get(target, prop) {
      if (prop === "getByName") {
        return (name, ...rest) => {
          const stub = target.getByName(name, ...rest);
          if (stub.id) idNames.set(String(stub.id), name);
          return countingStub(stub, cls, name);
        };
      }
      if (prop === "get") return (id, ...rest) => countingStub(target.get(id, ...rest), cls, nameOf(id));
      if (prop === "idFromName") return (name) => { const id = target.idFromName(name); idNames.set(String(id), name); return id; };
      const v = Reflect.get(target, prop);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

const wrappedEnvs = new WeakMap();
function countingEnv(env) {
  let out = wrappedEnvs.get(env);
  if (out) return out;
  const namespaces = {};
  for (const [binding, cls] of Object.entries(BINDINGS)) if (env[binding]) namespaces[binding] = countingNamespace(env[binding], cls);
  out = new Proxy(env, { get: (target, prop) => (prop in namespaces ? namespaces[prop] : Reflect.get(target, prop)) });
  wrappedEnvs.set(env, out);
  return out;
}

function countStorage(ctx, cls) {
  const storage = ctx.storage;
  const sql = storage.sql;
  const exec = sql.exec;
  // Cursors are consumed synchronously right after exec everywhere in this code base (toArray, one,
  // or nothing for writes), so their row counts are final one microtask later.
  sql.exec = function (...args) {
    const cursor = exec.apply(sql, args);
    // Miniflare's own bookkeeping (the __miniflare_do_name table it writes in every new object) is
    // not this Worker's and does not exist on Cloudflare.
    if (String(args[0]).includes("__miniflare")) return cursor;
    queueMicrotask(() => {
      try { bump(counts.rowsRead, cls, cursor.rowsRead); bump(counts.rowsWritten, cls, cursor.rowsWritten); } catch { /* closed */ }
    });
    return cursor;
  };
  // The key-value API on a SQLite-backed object is rows of its own table: one row written per key
  // put or deleted, one read per key got (what Cloudflare bills for it).
  const kv = storage.kv;
  if (kv) {
    // Counter names, not objects: a reset replaces the counts whole.
    const countKeys = (method, counter) => {
      const original = kv[method];
      kv[method] = function (...args) { bump(counts[counter], cls); return original.apply(kv, args); };
    };
    countKeys("put", "rowsWritten");
    countKeys("delete", "rowsWritten");
    countKeys("get", "rowsRead");
  }
  for (const [method, counter] of [["put", "rowsWritten"], ["delete", "rowsWritten"], ["get", "rowsRead"]]) {
    const original = storage[method];
    storage[method] = function (keyOrEntries, ...rest) {
      const keys = Array.isArray(keyOrEntries) ? keyOrEntries.length : typeof keyOrEntries === "object" ? Object.keys(keyOrEntries).length : 1;
      bump(counts[counter], cls, keys);
      return original.call(storage, keyOrEntries, ...rest);
    };
  }
  const setAlarm = storage.setAlarm;
  const id = ctx.id.toString();
  storage.setAlarm = function (...args) {
    bump(counts.alarmWrites, cls);
    (pending[cls] ??= {})[id] = Number(args[0] instanceof Date ? args[0].getTime() : args[0]);
    return setAlarm.apply(storage, args);
  };
  return id;
}

function pendingSummary() {
  const now = Date.now();
  return Object.fromEntries(Object.entries(pending).map(([cls, byId]) => {
    const inSeconds = Object.values(byId).map((at) => Math.round((at - now) / 100) / 10).sort((a, b) => a - b);
    return [cls, { count: inSeconds.length, inSecondsMin: inSeconds[0] ?? null, inSecondsMax: inSeconds[inSeconds.length - 1] ?? null }];
  }));
}

function counting(Base, cls) {
  class Counted extends Base {
    constructor(ctx, env) {
      const id = countStorage(ctx, cls);
      super(ctx, countingEnv(env));
      this.__benchId = id;
    }
  }
  const activityOfThis = (self) => (self.__benchActivity ??= activityOf(cls, nameOf(self.ctx?.id ?? self.__benchId)));
  // RPC methods (and fetch) are timed here, on the object's side, not around the stub call: when
  // the request that made a call is cancelled (a client hung up mid long-poll) the caller's promise
  // never settles, while the object's method runs on to its end. Every method of the class chain
  // is wrapped, as nothing tells RPC methods from internal ones; an internal call inside a handler
  // adds nothing to the union of intervals.
  for (let proto = Base.prototype; proto && proto !== Object.prototype && proto !== DurableObject.prototype; proto = Object.getPrototypeOf(proto)) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      if (name === "constructor" || HANDLERS.has(name) || Object.hasOwn(Counted.prototype, name)) continue;
      const d = Object.getOwnPropertyDescriptor(proto, name);
      if (typeof d.value !== "function") continue;
      const impl = Base.prototype[name];
      Counted.prototype[name] = function (...args) { return whileActive(activityOfThis(this), () => impl.apply(this, args)); };
    }
  }
  if (typeof Base.prototype.alarm === "function") {
    Counted.prototype.alarm = function (...args) {
      bump(counts.alarms, cls);
      delete pending[cls]?.[this.__benchId];
      const a = activityOfThis(this);
      a.alarms++;
      return whileActive(a, () => Base.prototype.alarm.apply(this, args));
    };
  }
  if (typeof Base.prototype.webSocketMessage === "function") {
    Counted.prototype.webSocketMessage = function (...args) {
      bump(counts.wsMessagesIn, cls);
      const a = activityOfThis(this);
      a.wsMessagesIn++;
      return whileActive(a, () => Base.prototype.webSocketMessage.apply(this, args));
    };
  }
  if (typeof Base.prototype.webSocketClose === "function") {
    Counted.prototype.webSocketClose = function (...args) { return whileActive(activityOfThis(this), () => Base.prototype.webSocketClose.apply(this, args)); };
  }
  return Counted;
}

${Object.values(BINDINGS).map((cls) => `export const ${cls} = counting(mod.${cls}, ${JSON.stringify(cls)});`).join("\n")}

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname === "/__bench/counts") return Response.json({ ...counts, pendingAlarms: pendingSummary(), ...activeSummary(url.searchParams.has("objects")) });
    if (url.pathname === "/__bench/reset") { counts = fresh(); resetActivity(); return Response.json({ ok: true }); }
    counts.workerRequests++;
    // Connect paths name the method; the rest are grouped by their first segment.
    const key = url.pathname.startsWith("/proto.") || url.pathname.startsWith("/protocol.") ? url.pathname : "/" + url.pathname.split("/")[1];
    bump(counts.workerRequestsByPath, key);
    return worker.fetch(request, countingEnv(env), ctx);
  },
};
`;
}

/**
 * Starts the counting instance: this Worker (of the working tree, or of commit `ref`) behind the
 * wrapper, served as processes.mjs startWrangler serves the measured instance. Stop it with
 * processes.mjs stop.
 */
export async function startCountingWrangler(authSecret, { ref = null } = {}) {
  const server = await startWrangler(authSecret, { ref, wrapMain: wrapperSource, name: "wrangler dev (counting)" });
  return {
    ...server,
    /** The counts; with `objects`, also `byObject`: each object's active ms and requests. */
    counts: async ({ objects = false } = {}) => (await fetch(`${server.baseUrl}/__bench/counts${objects ? "?objects" : ""}`)).json(),
    reset: async () => { await (await fetch(`${server.baseUrl}/__bench/reset`, { method: "POST" })).arrayBuffer(); },
  };
}

/** Sum of a counts table's values. */
function total(table) {
  return Object.values(table ?? {}).reduce((sum, v) => sum + v, 0);
}

// ---- prices (Cloudflare Workers Paid, as published on developers.cloudflare.com; assumed 2026-11) ----

export const PRICES = {
  asOf: "2026-11 (Cloudflare Workers Paid plan, published list prices)",
  workerRequestPerMillion: 0.30, // beyond 10 M included per month
  workerCpuMsPerMillion: 0.02, // beyond 30 M CPU-ms included per month
  doRequestPerMillion: 0.15, // beyond 1 M included; RPC method calls, fetches, alarms, incoming WebSocket messages at 20:1
  doGbSecondPerMillion: 12.50, // beyond 400 000 GB-s included; 128 MB per object
  doRowsWrittenPerMillion: 1.00, // SQLite-backed objects, beyond 50 M included (billed since January 2026)
  doRowsReadPerMillion: 0.001, // beyond 25 000 M included
  wsMessagesPerBilledRequest: 20,
  objectGb: 0.128,
};

/**
 * Counts one relayed call on the counting instance: two sockets in a room, handshake, accept, then
 * `seconds` of 20 ms frames both ways at 50 frames/s each, then both hang up (close).
 */
export async function countAudio(counting, secret, seconds) {
  const room = `count-audio-${Date.now().toString(36)}`;
  await counting.reset();
  const [a, b] = await Promise.all(["a", "b"].map(async (who) => openWebSocket(await audioRoomUrl(counting, room, `${room}-${who}`, secret))));
  await pairCall(a, b, `${room}-b`, WIDEBAND);
  const frame = packet(TYPE.Data, Buffer.alloc(WIDEBAND.samplesPerFrame * 2));
  let sent = 0, received = 0;
  a.on("message", () => received++);
  b.on("message", () => received++);
  const t0 = performance.now();
  for (let k = 1; k <= seconds * 50; k++) {
    a.send(frame); b.send(frame); sent += 2;
    const wait = t0 + k * 20 - performance.now();
    if (wait > 0) await sleep(wait);
  }
  await sleep(500);
  a.close(); b.close();
  await sleep(500);
  const c = await counting.counts();
  return { seconds, framesSent: sent, framesReceived: received, counts: c };
}

/**
 * Counts `calls` call setups on the counting instance the way they happen in production: each call
 * between a caller and a callee not seen for over a second (so every request leases its rate-limit
 * tokens afresh, as an identity making one call a minute does), the callee online with one stream
 * opened beforehand, which it replaces after the call (that replacement is the next call's stream,
 * and is counted with this call).
 */
export async function countCalls(counting, protos, secret, calls) {
  const clients = workerClients(protos, counting.baseUrl, { viam: "grpc-web", ownAgent: true });
  const run = Date.now().toString(36);
  const pairs = await Promise.all(Array.from({ length: calls }, async (_, i) => {
    const callee = `count-callee-${run}-${i}`, caller = `count-caller-${run}-${i}`;
    return {
      calleeHeaders: { authorization: `Bearer ${await signToken(callee, secret)}` },
      callerHeaders: { authorization: `Bearer ${await signToken(caller, secret)}`, "rpc-host": callee },
    };
  }));
  let calleeError = null;
  const sides = [];
  try {
    for (const p of pairs) sides.push(onlineCallee(clients, p.calleeHeaders, { candidate: CANDIDATE, replace: "on-end", onError: (err) => { calleeError ??= err; } }));
    await sleep(1_500); // registered, and every callee's rate-limit lease (1 s) has lapsed
    await counting.reset();
    const t0 = performance.now();
    for (const p of pairs) {
      if (calleeError) throw calleeError;
      const r = await viamCall(clients.signaling, p.callerHeaders, { candidate: CANDIDATE });
      if (r.retries) throw new Error("counting: a callee was not online");
    }
    const ms = performance.now() - t0;
    // Every callee's stream ends once its exchange completes and a replacement registers.
    const until = Date.now() + 5_000;
    while (sides.some((s) => s.state.opened < 2) && Date.now() < until) await sleep(50);
    // Settle: the last exchanges' sockets close, and the caller's door timer (the offer deadline is
    // kept there, not in an alarm) has nothing left to ask; what their handlers do is counted.
    await sleep(2_300);
    const counts = await counting.counts();
    return { calls, ms: round(ms, 1), windowSeconds: round((performance.now() - t0) / 1000, 1), counts };
  } finally {
    for (const s of sides) s.stop();
    await sleep(200);
    clients.close();
  }
}

/**
 * Durable Object active seconds per call setup of a countCalls result, counted over the whole
 * count (the calls, the callees' replacement streams registering, the wait for the hand-over
 * alarms): every second some object could not hibernate, divided by the calls.
 */
export function setupActivity(callCount) {
  const { calls: n, counts: c } = callCount;
  return {
    countWindowSeconds: callCount.windowSeconds ?? null,
    doActiveSecondsCounted: c.activeMs ? round(total(c.activeMs) / 1000 / n, 3) : null,
    doActiveSecondsByClass: c.activeMs ? Object.fromEntries(Object.entries(c.activeMs).map(([k, v]) => [k, round(v / 1000 / n, 3)])) : null,
  };
}

/** Durable Object requests a completed call setup makes, by method, per call. */
function perCall(table, calls) {
  return Object.fromEntries(Object.entries(table ?? {}).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, round(v / calls, 2)]));
}

export function costs(callCount, audioCount, signalingResult) {
  const n = callCount.calls;
  const c = callCount.counts;
  // Alarms: HostObject's hand-over alarm (2 s) fires within the run and is counted. Each CallObject
  // is left with one alarm pending (counted: pendingAlarms), for its signals' 60 s TTL (the last
  // batch each side pulled is never acknowledged); from the code, it then re-arms for the call's
  // 12 h maximum age (a call is never hung up in this benchmark; the exchange leaves it
  // "exchanged"), which ends the call, and then for the 1 h retention, which deletes it: three
  // alarm invocations per call after the run, derived. A call hung up before 60 s skips the second.
  const countedAlarms = total(c.alarms);
  const pendingCallAlarms = c.pendingAlarms?.CallObject?.count ?? 0;
  // Each CallObject is left with one alarm pending (its maximum age, 12 h after the start), which
  // deletes an exchanged call when it fires: one invocation per pending alarm, counted as pending.
  const callAlarmsPending = round(pendingCallAlarms / n, 2);
  const setup = {
    calls: n,
    workerRequests: round(c.workerRequests / n, 2),
    workerRequestsByPath: perCall(c.workerRequestsByPath, n),
    doRpcAndFetch: round(total(c.doRequests) / n, 2),
    doRequestsByMethod: perCall(c.doRequests, n),
    doAlarmsCounted: round(countedAlarms / n, 2),
    doAlarmsDerived: callAlarmsPending,
    callObjectAlarmsPendingPerCall: round(pendingCallAlarms / n, 2),
    callObjectAlarmPendingInSeconds: c.pendingAlarms?.CallObject ?? null,
    wsMessagesIn: round(total(c.wsMessagesIn) / n, 2),
    rowsWritten: round(total(c.rowsWritten) / n, 2),
    rowsWrittenByClass: perCall(c.rowsWritten, n),
    rowsRead: round(total(c.rowsRead) / n, 2),
    alarmWrites: round(total(c.alarmWrites) / n, 2),
    ...setupActivity(callCount),
  };
  setup.doRequests = round(setup.doRpcAndFetch + setup.doAlarmsCounted + setup.doAlarmsDerived + setup.wsMessagesIn / PRICES.wsMessagesPerBilledRequest, 2);
  // Durable Object duration of a setup: the time its objects had a handler in flight, as counted
  // (objects sleep between messages, and waiting answerers hibernate).
  const activeSeconds = setup.doActiveSecondsCounted ?? (signalingResult?.sequential?.median ?? 20) / 1000;
  setup.doActiveSecondsBilled = round(activeSeconds, 4);
  // CPU time, billed per ms on Workers: the local server CPU per setup (runtime and dev proxy, so
  // an upper bound for the edge, where there is no proxy).
  setup.cpuMsPerSetup = signalingResult?.sequential?.serverCpuMsPerCall ?? null;
  const p = PRICES;
  const perMillion = {
    workerRequests: round(setup.workerRequests * p.workerRequestPerMillion, 3),
    doRequests: round(setup.doRequests * p.doRequestPerMillion, 3),
    rowsWritten: round((setup.rowsWritten + setup.alarmWrites) * p.doRowsWrittenPerMillion, 3),
    rowsRead: round(setup.rowsRead * p.doRowsReadPerMillion, 4),
    doDuration: round(activeSeconds * p.objectGb * p.doGbSecondPerMillion, 3),
  };
  perMillion.total = round(Object.values(perMillion).reduce((s, v) => s + v, 0), 2);
  perMillion.cpuMs = setup.cpuMsPerSetup === null ? null : round(setup.cpuMsPerSetup * p.workerCpuMsPerMillion, 3);
  perMillion.totalWithCpu = perMillion.cpuMs === null ? null : round(perMillion.total + perMillion.cpuMs, 2);
  perMillion.requestsOnly = round(perMillion.workerRequests + perMillion.doRequests, 2);
  setup.costPerMillionCallsUsd = perMillion;

  // Relayed audio, per minute of a two-party call.
  const a = audioCount.counts;
  const minutes = audioCount.seconds / 60;
  const wsIn = a.wsMessagesIn?.AudioRoom ?? 0;
  const audio = {
    seconds: audioCount.seconds, framesSent: audioCount.framesSent, framesReceived: audioCount.framesReceived,
    workerRequestsPerCall: a.workerRequests, doFetchPerCall: a.doRequests?.["AudioRoom.fetch"] ?? 0,
    wsMessagesInCounted: wsIn, wsMessagesInPerMinute: round(wsIn / minutes, 0),
    roomAlarmsCounted: a.alarms?.AudioRoom ?? 0, roomAlarmWritesCounted: a.alarmWrites?.AudioRoom ?? 0,
    roomRowsWrittenCounted: a.rowsWritten?.AudioRoom ?? 0,
  };
  // 50 frames/s each way: 6 000 incoming messages a minute, whatever the run's length.
  const wsPerMinute = 2 * 50 * 60;
  const sweepAlarmsPerMinute = 60 / 5; // AUDIO_SWEEP_MS = 5 s while a call is in progress
  audio.billedDoRequestsPerMinute = round(wsPerMinute / p.wsMessagesPerBilledRequest + sweepAlarmsPerMinute, 1);
  // Frames arrive every 10 ms, so the room never idles long enough to hibernate: it is active, and
  // billed for its duration, the whole minute.
  audio.costPerMillionMinutesUsd = {
    doRequests: round(audio.billedDoRequestsPerMinute * p.doRequestPerMillion, 2),
    alarmWrites: round(sweepAlarmsPerMinute * p.doRowsWrittenPerMillion, 2),
    doDuration: round(60 * p.objectGb * p.doGbSecondPerMillion, 2),
  };
  audio.costPerMillionMinutesUsd.total = round(Object.values(audio.costPerMillionMinutesUsd).reduce((sum, v) => sum + v, 0), 2);

  // A callee online and idle holds a hibernated socket on its HostObject: no handler runs, so no
  // duration and no request (Viam heartbeats come from the Worker; the idle part counts this).
  const idleCallee = { doGbSecondsPerHour: 0, doRequestsPerHour: 0, usdPerHour: 0, usdPer30Days: 0 };
  return { setup, audio, onlineCallee: idleCallee };
}


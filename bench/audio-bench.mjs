// Audio relay benchmark: seed-003 data frames of 20 ms of 48 kHz 16-bit mono (960 samples,
// 1 920 bytes + the 6-byte header) between paired WebSockets. Both sockets of a pair live in this
// process, so one-way latency is measured with one clock: each frame carries its send time
// (performance.now()), its step and its sequence number in the first 16 bytes of its samples.
// The same client code drives this Worker (`/audio/:room`, token per identity) and the baseline
// (bench/node-ws-relay.mjs, `/<room>?id=`): connect, handshake, accept, then data both ways.
import { cpuBetween } from "./processes.mjs";
import { audioRoomUrl, HEADER_BYTES, packet, pairCall, TYPE, typeOf, WIDEBAND } from "./seed003-client.mjs";
import { round, sleep, summarize } from "./stats.mjs";
import { openWebSocket } from "./websocket-client.mjs";

const FRAME_MS = 20;
export const FRAME_BYTES = HEADER_BYTES + WIDEBAND.samplesPerFrame * 2; // 1 926
/** Stamp offsets inside a data frame (after the header). */
const STEP_AT = 6, SEQ_AT = 10, SENT_AT = 14;

/** One data frame of a 440 Hz tone; each send copies it and stamps step, seq and time. */
const TONE_FRAME = (() => {
  const samples = Buffer.alloc(WIDEBAND.samplesPerFrame * 2);
  for (let n = 0; n < WIDEBAND.samplesPerFrame; n++) samples.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * n) / WIDEBAND.sampleRate)), 2 * n);
  return packet(TYPE.Data, samples);
})();

/** How each system names a room's socket for an identity. */
export function workerAudioSystem(server, secret) {
  return { name: "worker", url: (room, identity) => audioRoomUrl(server, room, identity, secret) };
}

export function baselineAudioSystem(server) {
  return { name: "baseline", url: async (room, identity) => `${server.url}/${room}?id=${identity}` };
}

/** A relay socket once it is paired (or, for the ping floor, open): data frames go to `onData`,
 * text to `onText`. */
class RelaySocket {
  constructor(ws) {
    this.ws = ws;
    this.closed = false;
    this.onData = null;
    this.onText = null;
    ws.on("close", () => { this.closed = true; });
    ws.on("message", (data, isBinary) => {
      if (!isBinary) return this.onText?.(data);
      if (data.length >= HEADER_BYTES && typeOf(data) === TYPE.Data) this.onData?.(data);
    });
  }

  sendData(step, seq) {
    const frame = Buffer.allocUnsafe(FRAME_BYTES);
    TONE_FRAME.copy(frame);
    frame.writeUInt32LE(step, STEP_AT);
    frame.writeUInt32LE(seq, SEQ_AT);
    frame.writeDoubleLE(performance.now(), SENT_AT);
    this.ws.send(frame);
  }

  close() { this.ws.terminate(); }
}

/** Connects `a<i>` and `b<i>` in `room`; a calls b, b accepts. */
async function openPair(system, room, i) {
  const [a, b] = await Promise.all([system.url(room, `a${i}`).then(openWebSocket), system.url(room, `b${i}`).then(openWebSocket)]);
  try {
    await pairCall(a, b, `b${i}`, WIDEBAND);
    return { a: new RelaySocket(a), b: new RelaySocket(b) };
  } catch (err) {
    a.terminate(); b.terminate();
    throw err;
  }
}

async function openPairs(system, room, from, to, pairs) {
  const BATCH = 25; // bounded parallel upgrades, so a ramp step does not start with a connect storm
  for (let i = from; i < to; i += BATCH) {
    pairs.push(...await Promise.all(Array.from({ length: Math.min(BATCH, to - i) }, (_, j) => openPair(system, room, i + j))));
  }
}

/**
 * Every socket of `pairs` sends one frame per 20 ms to its peer for `seconds`, phases spread over
 * the 20 ms like independent calls. A late timer catches up, so the offered rate stays 50/s per
 * direction; how late the sender ran is reported (a client that cannot keep up shows here). A
 * frame not received within `graceMs` of the last send counts as lost: for live audio a frame
 * that late is as good as lost.
 */
async function pacedRun(pairs, { step, seconds, graceMs }) {
  const sockets = pairs.flatMap(({ a, b }) => [a, b]);
  const latencies = [];
  const sendLag = [];
  let received = 0, stale = 0, sent = 0;
  const onData = (frame) => {
    if (frame.readUInt32LE(STEP_AT) !== step) { stale++; return; }
    latencies.push(performance.now() - frame.readDoubleLE(SENT_AT));
    received++;
  };
  for (const s of sockets) s.onData = onData;
  const framesEach = Math.round((seconds * 1000) / FRAME_MS);
  const start = performance.now() + 50;
  await Promise.all(sockets.map((s, i) => new Promise((resolve) => {
    const t0 = start + (i / sockets.length) * FRAME_MS;
    let k = 0;
    const tick = () => {
      const now = performance.now();
      const due = Math.min(framesEach, Math.floor((now - t0) / FRAME_MS) + 1);
      while (k < due) {
        sendLag.push(now - (t0 + k * FRAME_MS));
        if (!s.closed) { s.sendData(step, k); sent++; }
        k++;
      }
      if (k >= framesEach) return resolve();
      setTimeout(tick, Math.max(0, t0 + k * FRAME_MS - performance.now()));
    };
    setTimeout(tick, Math.max(0, t0 - performance.now()));
  })));
  const until = performance.now() + graceMs;
  while (received < sent && performance.now() < until) await sleep(5);
  const expected = framesEach * sockets.length;
  return {
    framesExpected: expected, framesSent: sent, framesReceived: received, lost: expected - received,
    socketsClosed: sockets.filter((s) => s.closed).length, staleFrames: stale,
    latencyMs: summarize(latencies), clientSendLagMs: summarize(sendLag),
  };
}

function serverCpu({ total, byRole }) {
  return { serverCpuPercent: round(total, 0), serverCpuPercentByProcess: byRole };
}

function uniqueRoom(what) {
  return `bench-${what}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

function closeAll(pairs) {
  for (const { a, b } of pairs) { a.close(); b.close(); }
}

/** One pair, paced both ways: the latency a single call sees. */
export async function audioLatency(system, { seconds }) {
  const pairs = [];
  await openPairs(system, uniqueRoom("latency"), 0, 1, pairs);
  try {
    await pacedRun(pairs, { step: 1, seconds: 1, graceMs: 1_000 }); // warm-up
    return await pacedRun(pairs, { step: 2, seconds, graceMs: 2_000 });
  } finally {
    closeAll(pairs);
  }
}

/**
 * Closed loop: `send` as fast as replies come back, at most `window` unanswered, for `seconds`
 * after a 0.5 s warm-up. Returns replies/s and the server CPU per 1000 replies.
 */
async function closedLoop({ send, replies, seconds, window, cpu, alive }) {
  let sent = 0, received = 0, running = true;
  const pump = () => { while (running && alive() && sent - received < window) { send(sent); sent++; } };
  replies(() => { received++; pump(); });
  const measure = async (ms) => {
    const r0 = received, t0 = performance.now(), cpu0 = cpu();
    await sleep(ms);
    const n = received - r0;
    return { perSec: n / ((performance.now() - t0) / 1000), cpuPer1000: cpuBetween(cpu0, cpu(), Math.max(1, n) / 1000) };
  };
  pump();
  await measure(500);
  const result = await measure(seconds * 1000);
  running = false;
  return result;
}

/** One pair, a → b unpaced with at most `window` frames in flight: frames/s one way. */
export async function audioThroughput(system, { seconds, window, cpu }) {
  const pairs = [];
  await openPairs(system, uniqueRoom("throughput"), 0, 1, pairs);
  const [{ a, b }] = pairs;
  try {
    const { perSec, cpuPer1000 } = await closedLoop({
      send: (seq) => a.sendData(0, seq), replies: (onReply) => { b.onData = onReply; },
      seconds, window, cpu, alive: () => !a.closed && !b.closed,
    });
    return {
      framesPerSec: round(perSec, 0), mbitPerSec: round((perSec * FRAME_BYTES * 8) / 1e6, 1), window,
      serverCpuMsPer1000Frames: cpuPer1000.total, serverCpuMsPer1000FramesByProcess: cpuPer1000.byRole,
      socketsClosed: [a, b].filter((s) => s.closed).length,
    };
  } finally {
    closeAll(pairs);
  }
}

/**
 * The keep-alive round trip on one socket: text "ping", answered "pong". This Worker's room has
 * the runtime answer it (setWebSocketAutoResponse) without running any JavaScript, so its cost is
 * the floor of the message path every relayed frame also takes (client → dev proxy → runtime).
 */
export async function audioPingFloor(system, { seconds, window, cpu }) {
  const socket = new RelaySocket(await openWebSocket(await system.url(uniqueRoom("ping"), "pinger")));
  try {
    const { perSec, cpuPer1000 } = await closedLoop({
      send: () => socket.ws.send("ping"), replies: (onReply) => { socket.onText = onReply; },
      seconds, window, cpu, alive: () => !socket.closed,
    });
    return { pongsPerSec: round(perSec, 0), window, serverCpuMsPer1000Pongs: cpuPer1000.total, serverCpuMsPer1000PongsByProcess: cpuPer1000.byRole };
  } finally {
    socket.close();
  }
}

/**
 * K calls (pairs) in one room, each 50 frames/s both ways, for K = `steps` in turn. A step
 * passes the brief's test with zero loss and p99 under twice the first step's p99, and the
 * absolute test with zero loss and p99 under one frame (20 ms). The ramp stops once a step
 * fails both, or before a step that would run past `deadline`.
 */
export async function audioRamp(system, { steps, seconds, graceMs, deadline, cpu }) {
  const room = uniqueRoom("ramp");
  const pairs = [];
  const results = [];
  let stoppedBy = "last step";
  let baseP99 = null;
  let primaryOk = true, absoluteOk = true;
  try {
    for (const [index, k] of steps.entries()) {
      // Budget: the step itself, its grace, and about 10 ms per new socket to connect.
      if (performance.now() + seconds * 1000 + graceMs + (k - pairs.length) * 20 > deadline) { stoppedBy = "time budget"; break; }
      try {
        await openPairs(system, room, pairs.length, k, pairs);
      } catch (err) {
        results.push({ pairs: k, error: `opening calls failed: ${String(err)}`, primaryPass: false, absolutePass: false });
        stoppedBy = "connect failure";
        break;
      }
      await sleep(200);
      const cpu0 = cpu(), client0 = process.cpuUsage(), t0 = performance.now();
      const run = await pacedRun(pairs, { step: 100 + index, seconds, graceMs });
      const wallMs = performance.now() - t0;
      const clientCpu = process.cpuUsage(client0);
      const clean = run.lost === 0 && run.socketsClosed === 0;
      if (index === 0) baseP99 = run.latencyMs.p99;
      const primaryPass = clean && (index === 0 || run.latencyMs.p99 < 2 * baseP99);
      const absolutePass = clean && run.latencyMs.p99 < FRAME_MS;
      primaryOk &&= primaryPass;
      absoluteOk &&= absolutePass;
      results.push({
        pairs: k, framesPerSecOffered: k * 2 * (1000 / FRAME_MS), ...run, primaryPass, absolutePass,
        ...serverCpu(cpuBetween(cpu0, cpu(), wallMs / 100)),
        clientCpuPercent: round(((clientCpu.user + clientCpu.system) / 1000 / wallMs) * 100, 0),
      });
      const last = results[results.length - 1];
      // The load generator itself near a full core, or sending half a frame late: past this point
      // the step measures this process as much as the server.
      last.clientLimited = last.clientCpuPercent >= 80 || last.clientSendLagMs.p99 > FRAME_MS / 2;
      if (!primaryOk && !absoluteOk) { stoppedBy = "failed step"; break; }
    }
  } finally {
    closeAll(pairs);
  }
  const highest = (key) => {
    let best = 0;
    for (const r of results) { if (!r[key]) break; best = r.pairs; }
    return best;
  };
  return { steps: results, stoppedBy, p99AtFirstStepMs: baseP99, maxPairsPrimary: highest("primaryPass"), maxPairsAbsolute: highest("absolutePass") };
}

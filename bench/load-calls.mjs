// The load test's two kinds of call, as real clients on loopback:
// - a signaling call: a Viam caller (SignalingService.Call + CallUpdate, Connect over HTTP/1.1)
//   and a Voice callee (VoiceService.Connect, bidi over HTTP/1.1), each sending an offer or an
//   answer and CANDIDATES candidates; every candidate is checked on arrival, both ways;
// - an audio-relay pair: two seed-003 sockets in one room, paired by handshake and accept, each
//   sending 20 ms data packets at 50 a second, numbered, so loss and order are checked exactly.
import { Code, ConnectError } from "@connectrpc/connect";
import { createWritableIterable } from "@connectrpc/connect/protocol";
import { ANSWER_SDP, hostCandidate, OFFER_SDP } from "./fixtures.mjs";
import { audioRoomUrl, HEADER_BYTES, NARROWBAND, packet, pairCall, TYPE, typeOf } from "./seed003-client.mjs";
import { sleep } from "./stats.mjs";
import { openWebSocket } from "./websocket-client.mjs";

export const CANDIDATES = 10;
/** A caller retries a Call that finds its callee not yet registered (not_found), or its own
 * request budget spent (resource_exhausted), with this backoff; retries are counted. */
const RETRY_DELAYS_MS = [10, 20, 40, 80, 160, 320, 500, 500, 500, 1000, 1000, 1000, 2000, 2000];

/**
 * A callee's Voice stream, opened now: it answers the first offer, sends its candidates and its
 * done (closing its side), and records every candidate it receives. `result` settles when its
 * stream ends.
 */
export function openCallee(voice, token) {
  const outbox = createWritableIterable();
  const got = { offer: null, candidates: [], offerAt: 0, lastAt: 0 };
  const stream = voice.connect(outbox, { headers: { authorization: `Bearer ${token}` }, timeoutMs: 120_000 });
  const result = (async () => {
    for await (const signal of stream) {
      if (signal.event.case === "offer") {
        got.offer = signal.event.value.offer;
        got.offerAt = performance.now();
        await outbox.write({ event: { case: "answer", value: { answer: ANSWER_SDP } } });
        for (let n = 0; n < CANDIDATES; n++) {
          await outbox.write({ event: { case: "candidate", value: { candidate: JSON.stringify({ candidate: hostCandidate("callee", n), sdpMid: "0", sdpMLineIndex: 0 }) } } });
        }
        outbox.close(); // the Voice client's done
      } else if (signal.event.case === "candidate") {
        got.candidates.push(JSON.parse(signal.event.value.candidate).candidate);
        got.lastAt = performance.now();
      }
    }
    return got;
  })();
  return { result, cancel: () => outbox.close() };
}

/**
 * The caller's side: Call (retrying not_found and resource_exhausted), then on the answer its
 * candidates and done through CallUpdate, reading the callee's candidates until the stream ends.
 */
export async function placeCall(signaling, token, host) {
  const headers = { authorization: `Bearer ${token}`, "rpc-host": host };
  let retries = 0;
  for (let attempt = 0; ; attempt++) {
    const started = performance.now();
    const got = { answerAt: 0, candidates: [], lastAt: 0, started, retries };
    let uuid = null;
    let updates = Promise.resolve();
    try {
      for await (const res of signaling.call({ sdp: OFFER_SDP }, { headers, timeoutMs: 120_000 })) {
        if (res.stage.case === "init") {
          uuid = res.uuid;
          got.answerAt = performance.now();
          // Trickle: the caller's candidates go out as the answer arrives, in order, then done.
          updates = (async () => {
            for (let n = 0; n < CANDIDATES; n++) {
              await signaling.callUpdate({ uuid, update: { case: "candidate", value: { candidate: hostCandidate("caller", n), sdpMid: "0", sdpmLineIndex: 0 } } }, { headers });
            }
            await signaling.callUpdate({ uuid, update: { case: "done", value: true } }, { headers });
          })();
        } else if (res.stage.case === "update") {
          got.candidates.push(res.stage.value.candidate.candidate);
          got.lastAt = performance.now();
        }
      }
      await updates;
      return { ...got, uuid };
    } catch (err) {
      const code = ConnectError.from(err).code;
      const retryable = uuid === null && (code === Code.NotFound || code === Code.ResourceExhausted);
      if (!retryable || attempt >= RETRY_DELAYS_MS.length) throw err;
      retries++;
      await sleep(RETRY_DELAYS_MS[attempt]);
    }
  }
}

/** The candidates each side must have received, in order. */
export const expectedCandidates = (from) => Array.from({ length: CANDIDATES }, (_, n) => hostCandidate(from, n));

// ---- audio relay pairs

const FRAME_BODY = NARROWBAND.samplesPerFrame * 2;
export const FRAMES_PER_SECOND = 50;

/**
 * A paired audio call in `room` of `server` between `aName` and `bName`; `stream(ms)` sends 50
 * frames a second each way for `ms`, then waits for the last frames and reports loss, order and
 * one-way latency per direction.
 */
export async function audioPair(server, secret, room, aName, bName) {
  const a = await openWebSocket(await audioRoomUrl(server, room, aName, secret));
  const b = await openWebSocket(await audioRoomUrl(server, room, bName, secret));
  await pairCall(a, b, bName, NARROWBAND);

  const directions = [{ from: a, to: b, name: `${aName}→${bName}` }, { from: b, to: a, name: `${bName}→${aName}` }];
  for (const d of directions) {
    d.sent = 0; d.received = 0; d.outOfOrder = 0; d.last = -1; d.latencies = [];
    d.to.on("message", (data) => {
      if (data.length !== HEADER_BYTES + FRAME_BODY || typeOf(data) !== TYPE.Data) return;
      const seq = data.readUInt32LE(6);
      d.received++;
      if (seq !== d.last + 1) d.outOfOrder++;
      d.last = seq;
      d.latencies.push(performance.now() - data.readDoubleLE(10));
    });
  }

  async function stream(ms) {
    const t0 = performance.now();
    const first = directions[0].sent;
    const total = first + Math.floor((ms / 1000) * FRAMES_PER_SECOND);
    const body = Buffer.alloc(FRAME_BODY);
    // Paced against the clock: every frame due by now goes out, so timer jitter adds no drift.
    while (directions[0].sent < total) {
      const due = Math.min(total, first + Math.floor(((performance.now() - t0) / 1000) * FRAMES_PER_SECOND) + 1);
      for (const d of directions) {
        while (d.sent < due) {
          body.writeUInt32LE(d.sent, 0);
          body.writeDoubleLE(performance.now(), 4);
          d.from.send(packet(TYPE.Data, body));
          d.sent++;
        }
      }
      await sleep(5);
    }
    const until = performance.now() + 5_000;
    while (performance.now() < until && directions.some((d) => d.received < d.sent)) await sleep(20);
    // Cumulative counts: the last stretch's report covers the whole call.
    return directions.map((d) => ({ name: d.name, sent: d.sent, received: d.received, lost: d.sent - d.received, outOfOrder: d.outOfOrder, latencies: d.latencies }));
  }

  async function close() {
    a.send(packet(TYPE.Drop));
    await sleep(50);
    a.close(1000);
    b.close(1000);
  }
  return { stream, close };
}

// Every decoder at a door, fed 100 000 random and mutated inputs (mutations of valid messages):
// no crash, only the door's typed errors. The pure decoders take the 100 000; a sample goes
// through the real mounted Worker and objects, after which they must still serve a call.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { createMethodSerializationLookup, encodeEnvelope } from "@connectrpc/connect/protocol";
import { encodeWaveFromBuffer, SampleFormat as WaveFormat } from "@echogarden/wave-codec";
import { exports } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { emptyRoom, step as liveKitStep, type RoomState } from "../model/livekit-model";
import { SignalRequestSchema, SignalResponseSchema } from "../proto/gen/livekit_rtc_pb";
import { Sip } from "../proto/gen/ondewo/sip/sip_pb";
import { ICECandidateSchema, SignalingService } from "../proto/gen/proto/rpc/webrtc/v1/signaling_pb";
import { VoiceService } from "../proto/gen/protocol/voice/v1/voice_pb";
import { AudioMessageType, encode, SampleFormat } from "../codecs/audio-codec";
import { publicError } from "../worker/connect-errors";
import { readRequestFrame } from "../worker/connect-websocket";
import { MAX_RPC_MESSAGE_BYTES } from "../model/limits";
import { mediaSections, rewriteMsid } from "../codecs/livekit-sdp";
import { iceToWire } from "../codecs/viam-ice";
import { candidateFromVoice } from "../worker/voice";
import { convertPcm, decodeWav, WavError } from "../codecs/wav-audio";
import { AudioSocket, candidateLine, openVoice, unique, viamCall, waitOnline } from "./door-clients";
import { DATA_OFFER, grantFor, liveKitToken, micOffer } from "./livekit-fixtures";
import { concat, decoderInput, encodingPool, int, mutate, randomBytes, rng, type Rng } from "./message-mutations";
import { tokenFor } from "./tokens";

const RUNS = 100_000;
/** Each property draws a seed; the input is built from it (see message-mutations.ts). */
const seeds = fc.integer({ min: 0, max: 0x7fff_ffff });

/** Every method of every Connect door, and its request type. */
const METHODS = [SignalingService, VoiceService, Sip].flatMap((service) => service.methods);
const REQUEST_TYPES = [...new Map(METHODS.map((m) => [m.input.typeName, m.input])).values()];

describe("Connect request decoding: 100 000 inputs per request type", () => {
  for (const schema of REQUEST_TYPES) {
    it(`${schema.typeName}: decodes or fails with invalid_argument, and what it decodes encodes again`, () => {
      const method = METHODS.find((m) => m.input === schema)!;
      // What the handlers use: connect's own serialization with the doors' read limit.
      const parse = createMethodSerializationLookup(method, undefined, undefined,
        { readMaxBytes: MAX_RPC_MESSAGE_BYTES, writeMaxBytes: MAX_RPC_MESSAGE_BYTES }).getI(true);
      const pool = encodingPool(schema);
      fc.assert(fc.property(seeds, (seed) => {
        const bytes = decoderInput(pool, rng(seed));
        let message;
        try {
          message = parse.parse(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(ConnectError);
          expect(publicError(err).code).toBe(Code.InvalidArgument);
          return;
        }
        toBinary(schema, message);
      }), { numRuns: RUNS });
    });
  }
});

/** One request of `method` through the mounted Worker with `body` as its message bytes; the Connect code it ends with. */
async function throughWorker(method: (typeof METHODS)[number], body: Uint8Array, identity: string): Promise<string> {
  const streaming = method.methodKind !== "unary";
  const headers: Record<string, string> = {
    "content-type": streaming ? "application/connect+proto" : "application/proto",
    "connect-protocol-version": "1",
    authorization: `Bearer ${await tokenFor(identity)}`,
    "rpc-host": identity,
  };
  const payload = streaming ? concat(encodeEnvelope(0, body), encodeEnvelope(0b10, new Uint8Array(0))) : body;
  const res = await exports.default.fetch(`http://worker.test/${method.parent.typeName}/${method.name}`,
    { method: "POST", headers, body: payload, signal: AbortSignal.timeout(20_000) });
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (!streaming) {
    if (res.status === 200) return "ok";
    return (JSON.parse(new TextDecoder().decode(bytes)) as { code: string }).code;
  }
  // The last envelope is the end-stream JSON: its error, if any.
  let at = 0;
  let last: Uint8Array = new Uint8Array(0);
  while (at + 5 <= bytes.length) {
    const length = new DataView(bytes.buffer, bytes.byteOffset + at + 1, 4).getUint32(0);
    last = bytes.subarray(at, at + 5 + length);
    at += 5 + length;
  }
  const end = JSON.parse(new TextDecoder().decode(last.subarray(5))) as { error?: { code: string } };
  return end.error?.code ?? "ok";
}

describe("Connect request decoding through the mounted Worker: a sample per method", () => {
  it("answers random and mutated requests of every method with a typed code, never internal, and still serves a call", async () => {
    const r = rng(20_261_125);
    const pools = new Map(METHODS.map((m) => [m, encodingPool(m.input, 50)]));
    const seen = new Map<string, Set<string>>();
    for (const method of METHODS) {
      // Answer and Connect wait for a call to answer when their message is valid: those are
      // ended by the end-stream envelope (Voice) or bounded by the sample's timeout (Answer).
      if (method.name === "Answer") continue;
      for (let i = 0; i < 24; i++) {
        // A fresh identity each time: the sample must not spend one identity's request budget.
        const code = await throughWorker(method, decoderInput(pools.get(method)!, r), unique("fuzz"));
        expect(["internal", "unknown"], `${method.name} answered ${code}`).not.toContain(code);
        if (!seen.has(method.name)) seen.set(method.name, new Set());
        seen.get(method.name)!.add(code);
      }
    }
    // The objects the sample reached still work: a whole call, Viam caller to Voice callee.
    const callee = unique("callee");
    const voice = await openVoice(callee);
    await waitOnline(callee);
    const call = await viamCall(unique("caller"), callee);
    expect((await voice.next())?.event.case).toBe("offer");
    voice.answer("answer");
    expect((await call.next())?.stage.case).toBe("init");
  }, 120_000);
});

describe("/ws envelope reader: 100 000 frames", () => {
  it("takes a frame as one message, the end of the stream, or a refusal with 1002/1009, and never throws", () => {
    fc.assert(fc.property(seeds, (seed) => {
      const r = rng(seed);
      const body = randomBytes(r, 40);
      const valid = encodeEnvelope(r() < 0.2 ? 0b10 : int(r, 0, 1), body);
      const frame = r() < 0.15 ? randomBytes(r, 12) : r() < 0.6 ? mutate(valid, r) : valid;
      const read = readRequestFrame(frame);
      const declared = frame.length >= 5 ? new DataView(frame.buffer, frame.byteOffset).getUint32(1) : -1;
      switch (read.kind) {
        case "message":
          expect(read.envelope).toBe(frame);
          expect(declared).toBe(frame.length - 5);
          expect(frame[0] & 0b10).toBe(0);
          break;
        case "end":
          expect(frame[0] & 0b10).toBe(0b10);
          expect(declared).toBe(frame.length - 5);
          break;
        case "refused":
          expect([1002, 1009]).toContain(read.code);
          break;
      }
    }), { numRuns: RUNS });
  });

  it("refuses a frame whose message is 65 537 bytes (64 KiB + 1) with 1009, and reads one of exactly 65 536", () => {
    expect(readRequestFrame(encodeEnvelope(0, new Uint8Array(65_536 + 1)))).toMatchObject({ kind: "refused", code: 1009 });
    expect(readRequestFrame(encodeEnvelope(0, new Uint8Array(65_536)))).toMatchObject({ kind: "message" });
  });
});

/** A JSON RTCIceCandidateInit, valid or bent out of shape. */
function candidateText(r: Rng): string {
  const values = [candidateLine(int(r, 0, 300)), "", 0, -1, 1.5, 65535, 65536, 1e300, null, true, [], {}, "0", "x".repeat(50)];
  const init: Record<string, unknown> = {};
  for (const key of ["candidate", "sdpMid", "sdpMLineIndex", "usernameFragment", "__proto__", "constructor"]) {
    if (r() < 0.6) init[key] = key === "candidate" && r() < 0.7 ? candidateLine(int(r, 0, 300)) : values[int(r, 0, values.length - 1)];
  }
  const json = JSON.stringify(init);
  const roll = r();
  if (roll < 0.15) return String.fromCharCode(...randomBytes(r, 30));
  if (roll < 0.3) return candidateLine(int(r, 0, 300));
  if (roll < 0.7) return json;
  return new TextDecoder().decode(mutate(new TextEncoder().encode(json), r));
}

describe("Voice candidate parser: 100 000 candidates", () => {
  it("returns a candidate every door can carry, or fails with invalid_argument", () => {
    fc.assert(fc.property(seeds, (seed) => {
      const text = candidateText(rng(seed));
      let candidate;
      try {
        candidate = candidateFromVoice(text);
      } catch (err) {
        expect(err).toBeInstanceOf(ConnectError);
        expect((err as ConnectError).code).toBe(Code.InvalidArgument);
        return;
      }
      expect(typeof candidate.candidate).toBe("string");
      if (candidate.sdpMLineIndex !== undefined) {
        expect(Number.isInteger(candidate.sdpMLineIndex) && candidate.sdpMLineIndex >= 0 && candidate.sdpMLineIndex <= 0xffff).toBe(true);
      }
      // It reaches a Viam caller as an ICECandidate: that encoding must not fail (it used to for
      // an index of -1 or 1.5, failing the caller's stream instead of the Voice client's).
      toBinary(ICECandidateSchema, create(ICECandidateSchema, iceToWire(candidate)));
    }), { numRuns: RUNS });
  });
});

/** Alice alone with her offer parked, then Bob: two paired sessions, as the room's tests build it. */
function pairedLiveKitRoom(): RoomState {
  const ice = [{ urls: ["stun:stun.example.com:3478"] }];
  let state = emptyRoom();
  const apply = (event: Parameters<typeof liveKitStep>[1]) => { state = liveKitStep(state, event).state; };
  apply({ type: "join", connection: "a1", now: 1, grant: grantFor("alice"), clientProtocol: 2, iceServers: ice, freshSid: "PA_a", freshRoomSid: "RM_1" });
  apply({ type: "request", connection: "a1", now: 2, freshTrackSid: "TR_0",
    request: { case: "offer", value: { $typeName: "livekit.SessionDescription", type: "offer", sdp: DATA_OFFER, id: 1, midToTrackId: {} } } });
  apply({ type: "join", connection: "b1", now: 3, grant: grantFor("bob"), clientProtocol: 2, iceServers: ice, freshSid: "PA_b", freshRoomSid: "RM_1" });
  return state;
}

describe("LiveKit SignalRequest decoder: 100 000 frames", () => {
  const paired = pairedLiveKitRoom();
  const pool = encodingPool(SignalRequestSchema);

  it("decodes or throws, and the room's rules take every decoded request without throwing", () => {
    let decoded = 0;
    fc.assert(fc.property(seeds, (seed) => {
      const r = rng(seed);
      const bytes = decoderInput(pool, r);
      let request;
      try {
        request = fromBinary(SignalRequestSchema, bytes);
      } catch (err) {
        // The room closes such a socket with 1007 (livekit-room.ts); any Error is that case.
        expect(err).toBeInstanceOf(Error);
        return;
      }
      decoded++;
      const t = liveKitStep(paired, { type: "request", connection: r() < 0.5 ? "a1" : "b1", now: 10, request: request.message, freshTrackSid: "TR_x" });
      for (const effect of t.effects) expect(["a1", "b1"]).toContain(effect.connection);
    }), { numRuns: RUNS });
    expect(decoded).toBeGreaterThan(RUNS / 10);
  });
});

/** SDP-ish text: real offers, lines the rewrite looks at with odd values, and garbage. */
function sdpText(r: Rng): string {
  const lines = [
    "v=0", "m=audio 9 UDP/TLS/RTP/SAVPF 111", "m=video 0 UDP/TLS/RTP/SAVPF 96", "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
    "a=mid:0", "a=mid:", `a=mid:${"x".repeat(int(r, 0, 5))}`, "a=sendrecv", "a=recvonly", "a=inactive",
    `a=msid:stream ${pick(r)}`, `a=msid:${pick(r)}`, "a=msid:- -", `a=ssrc:${int(r, 0, 1e9)} msid:s ${pick(r)}`, "a=ssrc:x msid:",
    "a=rtpmap:111 opus/48000/2", "a=rtpmap:96", "m=", "a=", "", " ", "\t", "a=msid:a|b c|d",
  ];
  const text = Array.from({ length: int(r, 0, 30) }, () => lines[int(r, 0, lines.length - 1)]).join(r() < 0.5 ? "\r\n" : "\n");
  const roll = r();
  if (roll < 0.3) return r() < 0.5 ? micOffer() : DATA_OFFER;
  if (roll < 0.5) return new TextDecoder().decode(mutate(new TextEncoder().encode(r() < 0.5 ? micOffer() : text), r));
  return text;
}
const CIDS = ["mic-cid", "cam", "", "TR_1", "a b"];
function pick(r: Rng): string {
  return CIDS[int(r, 0, CIDS.length - 1)];
}

describe("LiveKit SDP msid rewrite: 100 000 SDPs", () => {
  it("rewrites only a=msid and a=ssrc msid lines, keeps every other line and the line count, and never throws", () => {
    fc.assert(fc.property(seeds, (seed) => {
      const sdp = sdpText(rng(seed));
      const { sdp: out, midToTrackId } = rewriteMsid(sdp, "PA_x", (cid) => (cid === "mic-cid" || cid === "cam" ? `TR_${cid}` : undefined));
      const eol = sdp.includes("\r\n") ? "\r\n" : "\n";
      const before = sdp.split(eol);
      const after = out.split(eol);
      expect(after.length).toBe(before.length);
      for (let i = 0; i < before.length; i++) {
        if (after[i] !== before[i]) expect(after[i]).toMatch(/^a=(msid:PA_x\|TR_\S+ TR_\S+|ssrc:\d+ msid:PA_x\|TR_\S+ TR_\S+)$/);
      }
      for (const trackSid of Object.values(midToTrackId)) expect(trackSid).toMatch(/^TR_/);
      const sections = mediaSections(sdp);
      expect(sections.length).toBeLessThanOrEqual(before.filter((l) => l.startsWith("m=")).length);
    }), { numRuns: RUNS });
  });
});

/** A pool of valid WAVs of every sample format the library writes, to mutate. */
function wavPool(): Uint8Array[] {
  const r = rng(7);
  const pool: Uint8Array[] = [];
  const formats: [8 | 16 | 24 | 32 | 64, WaveFormat][] = [[8, WaveFormat.PCM], [16, WaveFormat.PCM], [24, WaveFormat.PCM], [32, WaveFormat.PCM],
    [32, WaveFormat.Float], [64, WaveFormat.Float], [8, WaveFormat.Alaw], [8, WaveFormat.Mulaw]];
  for (let i = 0; i < 200; i++) {
    const [bits, format] = formats[i % formats.length];
    const channels = int(r, 1, 3);
    const frames = int(r, 1, 40);
    const sampleRate = [8000, 16000, 44100, 48000][int(r, 0, 3)];
    const samples = Uint8Array.from({ length: frames * channels * (bits / 8) }, () => int(r, 0, 255));
    pool.push(encodeWaveFromBuffer(samples, sampleRate, channels, bits, format));
  }
  return pool;
}

describe("SIP WAV decoder: 100 000 files", () => {
  const pool = wavPool();

  it("decodes a WAV into whole frames, or fails with WavError; conversion of what it decodes fails only with WavError", () => {
    fc.assert(fc.property(seeds, (seed) => {
      const r = rng(seed);
      const base = pool[int(r, 0, pool.length - 1)];
      const file = r() < 0.1 ? randomBytes(r, 64) : r() < 0.85 ? mutate(base, r, pool[int(r, 0, pool.length - 1)]) : base;
      let pcm;
      try {
        pcm = decodeWav(file);
      } catch (err) {
        expect(err).toBeInstanceOf(WavError);
        return;
      }
      expect(pcm.sampleRate).toBeGreaterThan(0);
      expect(pcm.channels).toBeGreaterThan(0);
      expect(pcm.data.byteLength).toBeGreaterThan(0);
      const target = { sampleRate: r() < 0.7 ? pcm.sampleRate : 16_000, channels: int(r, 1, 3), format: int(r, 0, 4) as SampleFormat };
      try {
        const out = convertPcm(pcm, target);
        expect(out).toBeInstanceOf(Uint8Array);
      } catch (err) {
        expect(err).toBeInstanceOf(WavError);
      }
    }), { numRuns: RUNS });
  });
});

describe("the socket doors' objects after garbage: a sample through real sockets", () => {
  it("audio room: closes each socket that sent garbage and still pairs and relays a call", async () => {
    const room = unique("room");
    const r = rng(3);
    const params = { sampleRate: 16_000, channels: 1, format: SampleFormat.Int16, chunkSize: 320 };
    const valid = [
      encode({ type: AudioMessageType.Handshake, params, username: "nobody", optional: new Uint8Array(2) }),
      encode({ type: AudioMessageType.Data, data: new Uint8Array(64) }),
      encode({ type: AudioMessageType.Accept, optional: new Uint8Array(0) }),
    ];
    for (let i = 0; i < 60; i++) {
      const fuzzer = await AudioSocket.join(room, `fuzzer-${i}`);
      const frame = i % 6 === 0 ? randomBytes(r, 40) : mutate(valid[i % valid.length], r);
      fuzzer.send(frame);
      // Either an answer (user-not-found for a handshake that survived) or a close; never silence forever.
      await Promise.race([fuzzer.next(2_000).catch(() => undefined), fuzzer.closed]);
      fuzzer.ws.close(1000);
    }
    const alice = await AudioSocket.join(room, "alice");
    const bob = await AudioSocket.join(room, "bob");
    alice.send({ type: AudioMessageType.Handshake, params, username: "bob", optional: new Uint8Array(0) });
    await bob.next();
    bob.send({ type: AudioMessageType.Accept, optional: new Uint8Array(0) });
    await alice.next();
    alice.send({ type: AudioMessageType.Data, data: new Uint8Array([1, 2, 3]) });
    expect(await bob.nextBytes()).toEqual(encode({ type: AudioMessageType.Data, data: new Uint8Array([1, 2, 3]) }));
  });

  it("LiveKit room: takes random and mutated SignalRequests on a socket and still answers a join", async () => {
    const room = unique("lk-room");
    const pool = encodingPool(SignalRequestSchema, 50);
    const r = rng(5);
    const open = async (identity: string) => {
      const res = await exports.default.fetch(`http://worker.test/rtc?access_token=${await liveKitToken(identity, room)}&auto_subscribe=1&sdk=js&version=2.23.0&protocol=17&client_protocol=2`,
        { headers: { upgrade: "websocket" } });
      expect(res.status).toBe(101);
      const ws = res.webSocket!;
      ws.accept();
      ws.binaryType = "arraybuffer";
      const first = new Promise<string | undefined>((resolve) => ws.addEventListener("message",
        (e) => resolve(fromBinary(SignalResponseSchema, new Uint8Array(e.data as ArrayBuffer)).message.case), { once: true }));
      const closed = new Promise<number>((resolve) => ws.addEventListener("close", (e) => resolve(e.code)));
      return { ws, first, closed };
    };
    for (let i = 0; i < 20; i++) {
      // One identity reconnecting: its newer socket replaces the older, so the room stays at one.
      const fuzzer = await open("fuzzer");
      expect(await fuzzer.first).toBe("join");
      for (let j = 0; j < 10; j++) fuzzer.ws.send(decoderInput(pool, r));
      await Promise.race([fuzzer.closed, new Promise((resolve) => setTimeout(resolve, 50))]);
    }
    const alice = await open("alice");
    expect(await alice.first).toBe("join");
  });
});

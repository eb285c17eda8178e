import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { SignalingService, type CallResponse } from "../proto/gen/proto/rpc/webrtc/v1/signaling_pb";
import { ClientSignalSchema, VoiceService, type Signal } from "../proto/gen/protocol/voice/v1/voice_pb";
import { candidateFromVoice } from "../worker/voice";
import { sdpToViam } from "../codecs/viam-sdp";
import { clientFor, pushable } from "./connect-clients";
import { tokenFor } from "./tokens";
import { codeOf } from "./rpc-outcomes";

type ClientInit = MessageInitShape<typeof ClientSignalSchema>;

let seq = 0;
const uniqueName = (role: string) => `${role}-${Date.now().toString(36)}-${seq++}`;

async function viamCaller(identity: string, host: string) {
  return clientFor(SignalingService, { authorization: `Bearer ${await tokenFor(identity)}`, "rpc-host": host });
}

async function openVoice(identity: string, headers: Record<string, string> = {}) {
  const client = clientFor(VoiceService, { authorization: `Bearer ${await tokenFor(identity)}`, ...headers });
  const outbox = pushable<ClientInit>();
  const stream = client.connect(outbox)[Symbol.asyncIterator]();
  return {
    send: (s: ClientInit) => outbox.push(s),
    close: () => outbox.close(),
    next: async (): Promise<Signal | null> => {
      const r = await stream.next();
      return r.done ? null : r.value;
    },
  };
}

async function waitOnline(host: string, answerers = 1) {
  for (let i = 0; i < 100; i++) {
    const s = await env.HOSTS.getByName(host).status();
    if (s.online && s.answerers >= answerers) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${host} never came online`);
}

async function drain(stream: AsyncIterator<CallResponse>) {
  for (let r = await stream.next(); !r.done; r = await stream.next()) { /* discard */ }
}

const line = (n: number) => `candidate:${n} 1 udp 2122260223 192.168.1.${n} 6000${n} typ host`;

describe("VoiceService.Connect", () => {
  it("answers a Viam call: offer and candidates in, answer and candidates out, then both streams end OK", async () => {
    const bob = uniqueName("bob");
    const voice = await openVoice(bob);
    await waitOnline(bob);
    const caller = await viamCaller("alice", bob);
    const viamOffer = sdpToViam("offer", "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n");
    const responses = caller.call({ sdp: viamOffer })[Symbol.asyncIterator]();

    // The Viam SDK's base64 JSON arrives at the Voice client as plain SDP.
    expect(await voice.next()).toMatchObject({ event: { case: "offer", value: { offer: "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n" } } });
    voice.send({ event: { case: "answer", value: { answer: "v=0\r\nanswer\r\n" } } });
    const init = (await responses.next()).value!;
    expect(init.stage.case).toBe("init");
    // ...and the Voice client's plain answer reaches the Viam caller in Viam's encoding.
    expect(init.stage.value).toMatchObject({ sdp: sdpToViam("answer", "v=0\r\nanswer\r\n") });

    await caller.callUpdate({ uuid: init.uuid, update: { case: "candidate", value: { candidate: line(1), sdpMid: "0", sdpmLineIndex: 0 } } });
    const c = await voice.next();
    expect(c?.event.case).toBe("candidate");
    expect(JSON.parse((c!.event.value as { candidate: string }).candidate)).toEqual({ candidate: line(1), sdpMid: "0", sdpMLineIndex: 0 });

    voice.send({ event: { case: "candidate", value: { candidate: JSON.stringify({ candidate: line(2), sdpMid: "0", sdpMLineIndex: 0 }) } } });
    expect((await responses.next()).value?.stage.value).toMatchObject({ candidate: { candidate: line(2), sdpMid: "0", sdpmLineIndex: 0 } });

    voice.close(); // no more candidates from the Voice client: its done
    expect((await responses.next()).done).toBe(true);
    await caller.callUpdate({ uuid: init.uuid, update: { case: "done", value: true } });
    expect(await voice.next()).toBeNull();
  });

  it("gives the oldest waiting call first", async () => {
    const bob = uniqueName("bob");
    const first = await openVoice(bob);
    await waitOnline(bob);
    const caller = await viamCaller("alice", bob);
    const older = caller.call({ sdp: "older" })[Symbol.asyncIterator]();
    expect(await first.next()).toMatchObject({ event: { case: "offer", value: { offer: "older" } } });
    // bob is busy with the first call; a second stream takes the next one.
    const second = await openVoice(bob);
    await waitOnline(bob);
    const newer = caller.call({ sdp: "newer" })[Symbol.asyncIterator]();
    expect(await second.next()).toMatchObject({ event: { case: "offer", value: { offer: "newer" } } });
    first.send({ event: { case: "answer", value: { answer: "a1" } } });
    second.send({ event: { case: "answer", value: { answer: "a2" } } });
    expect((await older.next()).value?.stage.value).toMatchObject({ sdp: "a1" });
    expect((await newer.next()).value?.stage.value).toMatchObject({ sdp: "a2" });
  });

  it("binds a stream to one call with the voice-call-id header", async () => {
    const bob = uniqueName("bob");
    const general = await openVoice(bob);
    await waitOnline(bob);
    const caller = await viamCaller("alice", bob);
    caller.call({ sdp: "first" })[Symbol.asyncIterator]().next().catch(() => undefined);
    expect(await general.next()).toMatchObject({ event: { case: "offer", value: { offer: "first" } } });

    // A call can be started by another door and picked by id: start it at the call object.
    const id = crypto.randomUUID();
    const specific = await openVoice(bob, { "voice-call-id": id });
    await waitOnline(bob);
    const started = await env.CALLS.getByName(id).start(id, { host: bob, caller: { identity: "carol", door: "sip" },
      sdp: "targeted", disableTrickle: false, deadline: Date.now() + 10_000 });
    expect(started.ok).toBe(true);
    expect(await specific.next()).toMatchObject({ event: { case: "offer", value: { offer: "targeted" } } });
  });

  it("tells the client which call it took in the voice-call-id response header", async () => {
    const bob = uniqueName("bob");
    let header: Headers | undefined;
    const outbox = pushable<ClientInit>();
    const signals = clientFor(VoiceService, { authorization: `Bearer ${await tokenFor(bob)}` })
      .connect(outbox, { onHeader: (h) => { header = h; } })[Symbol.asyncIterator]();
    const offered = signals.next();
    await waitOnline(bob);
    const responses = (await viamCaller("alice", bob)).call({ sdp: "offer" })[Symbol.asyncIterator]();
    await offered;
    outbox.push({ event: { case: "answer", value: { answer: "answer" } } });
    const { uuid } = (await responses.next()).value!;
    expect(header?.get("voice-call-id")).toBe(uuid);
  });

  it("rejects a second answer with failed_precondition and tells the Viam caller", async () => {
    const bob = uniqueName("bob");
    const voice = await openVoice(bob);
    await waitOnline(bob);
    const caller = await viamCaller("alice", bob);
    const responses = caller.call({ sdp: "offer" })[Symbol.asyncIterator]();
    await voice.next();
    voice.send({ event: { case: "answer", value: { answer: "one" } } });
    expect((await responses.next()).value?.stage.case).toBe("init");
    voice.send({ event: { case: "answer", value: { answer: "two" } } });
    expect(await codeOf(voice.next())).toBe(Code.FailedPrecondition);
    expect(await codeOf(drain(responses))).toBe(Code.FailedPrecondition);
  });

  it("rejects an answer before any offer with failed_precondition", async () => {
    const voice = await openVoice(uniqueName("bob"));
    voice.send({ event: { case: "answer", value: { answer: "too early" } } });
    const err = await voice.next().then(() => null, (e) => ConnectError.from(e));
    expect(err?.code).toBe(Code.FailedPrecondition);
    expect(err?.rawMessage).toMatch(/answer before any offer/);
  });

  it("rejects an empty candidate with invalid_argument and tells the Viam caller", async () => {
    const bob = uniqueName("bob");
    const voice = await openVoice(bob);
    await waitOnline(bob);
    const caller = await viamCaller("alice", bob);
    const responses = caller.call({ sdp: "offer" })[Symbol.asyncIterator]();
    await voice.next();
    voice.send({ event: { case: "answer", value: { answer: "answer" } } });
    await responses.next();
    voice.send({ event: { case: "candidate", value: { candidate: "" } } });
    expect(await codeOf(voice.next())).toBe(Code.InvalidArgument);
    expect(await codeOf(drain(responses))).toBe(Code.InvalidArgument);
  });

  it("ends the Voice stream with the caller's error when the caller gives up", async () => {
    const bob = uniqueName("bob");
    const voice = await openVoice(bob);
    await waitOnline(bob);
    const caller = await viamCaller("alice", bob);
    const responses = caller.call({ sdp: "offer" })[Symbol.asyncIterator]();
    await voice.next();
    voice.send({ event: { case: "answer", value: { answer: "answer" } } });
    const uuid = (await responses.next()).value!.uuid;
    await caller.callUpdate({ uuid, update: { case: "error", value: { code: Code.Canceled, message: "hung up" } } });
    expect(await codeOf(voice.next())).toBe(Code.Canceled);
  });

  it("refuses a stream without a token", async () => {
    const client = clientFor(VoiceService, {});
    const outbox = pushable<ClientInit>();
    expect(await codeOf(client.connect(outbox)[Symbol.asyncIterator]().next())).toBe(Code.Unauthenticated);
  });
});

describe("Voice candidate strings", () => {
  it("reads RTCIceCandidateInit JSON field by field", () => {
    expect(candidateFromVoice(JSON.stringify({ candidate: line(3), sdpMid: "audio", sdpMLineIndex: 1, usernameFragment: "uf" })))
      .toEqual({ candidate: line(3), sdpMid: "audio", sdpMLineIndex: 1, usernameFragment: "uf" });
  });

  it("reads a bare candidate line as m-line 0", () => {
    expect(candidateFromVoice(line(4))).toEqual({ candidate: line(4), sdpMLineIndex: 0 });
  });

  it("rejects JSON without a candidate with invalid_argument", () => {
    expect(() => candidateFromVoice("{\"sdpMid\":\"0\"}")).toThrow(expect.objectContaining({ code: Code.InvalidArgument }));
  });
});

// Every bound in model/limits.ts, enforced where it is stated. Bounds whose enforcement a door's
// own test already pins are named here with that test, so this file is the one index:
// - audio relay frame (1009): audio-relay.test.ts "closes a socket that sends a 65 537-byte frame (64 KiB + 1)"
// - LiveKit signalling frame (1009): livekit.test.ts "closes a socket that sends a 65 537-byte (64 KiB + 1) frame"
// - Viam Call message (resource_exhausted): viam-signaling.test.ts "rejects a message over the 64 KiB limit"
// - SIP WAV files and total: sip.test.ts "refuses 33 WAV files", "refuses WAV files of 4 MiB + 1 byte in total"
// - signals queued per side: call.test.ts "bounds the signals queued for a side with resource_exhausted"
// - offer deadline, signal TTL, audio ring timeout and keep-alive lease: faults.test.ts
// - SIP ring timeout: sip.test.ts "rings a callee without auto-answer until the ring timeout fails"
// - LiveKit peer wait: livekit.test.ts "sends a participant still alone leave JOIN_FAILURE"
// - requests per identity per second: rate-limit.test.ts
import { create, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { encodeEnvelope } from "@connectrpc/connect/protocol";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { Sip } from "../proto/gen/ondewo/sip/sip_pb";
import { CallUpdateRequestSchema, SignalingService } from "../proto/gen/proto/rpc/webrtc/v1/signaling_pb";
import { NAME_PATTERN } from "../model/limits";
import { clientFor } from "./connect-clients";
import { answeredCallObject, candidateLine, codeOf, errorOf, followCall, onlineAnswerer, openVoice, sipAccount, unique, viamClient } from "./door-clients";
import { liveKitToken } from "./livekit-fixtures";
import { tokenFor } from "./tokens";

// Each boundary is written out here, not taken from model/limits.ts: a changed limit fails a test.
const OVERSIZE = "x".repeat(65_536 + 1);

/** A CallUpdate candidate whose binary message is exactly `bytes` long. */
function callUpdateOfSize(bytes: number) {
  const uuid = crypto.randomUUID();
  const sized = (candidate: string) =>
    create(CallUpdateRequestSchema, { uuid, update: { case: "candidate", value: { candidate } } });
  // The length prefixes grow with the candidate: step up to the exact size.
  let candidate = "x".repeat(bytes - toBinary(CallUpdateRequestSchema, sized("")).length - 8);
  while (toBinary(CallUpdateRequestSchema, sized(candidate)).length < bytes) candidate += "x";
  const request = sized(candidate);
  expect(toBinary(CallUpdateRequestSchema, request).length).toBe(bytes);
  return request;
}

async function wsUpgrade(path: string) {
  const res = await exports.default.fetch(`http://worker.test${path}`, { headers: { upgrade: "websocket" } });
  const socket = res.webSocket!;
  socket.accept();
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason })));
  return { socket, closed };
}

describe("message size: 64 KiB per Connect message", () => {
  it("refuses a CallUpdate of 65 537 bytes (64 KiB + 1) with resource_exhausted", async () => {
    const caller = await viamClient(unique("caller"), "host");
    expect(await codeOf(caller.callUpdate(callUpdateOfSize(65_537)))).toBe(Code.ResourceExhausted);
  });

  it("reads a CallUpdate of exactly 65 536 bytes (64 KiB): it is answered for its unknown call, not its size", async () => {
    const caller = await viamClient(unique("caller"), "host");
    expect(await codeOf(caller.callUpdate(callUpdateOfSize(65_536)))).toBe(Code.NotFound);
  });

  it("refuses an oversize CallUpdate (unary) with resource_exhausted", async () => {
    const caller = await viamClient(unique("caller"), "host");
    const update = caller.callUpdate({ uuid: crypto.randomUUID(), update: { case: "candidate", value: { candidate: OVERSIZE } } });
    expect(await codeOf(update)).toBe(Code.ResourceExhausted);
  });

  it("refuses an oversize Voice message (bidi) with resource_exhausted", async () => {
    const voice = await openVoice(unique("callee"));
    voice.candidate(OVERSIZE);
    expect(await codeOf(voice.next())).toBe(Code.ResourceExhausted);
  });

  it("closes a /ws socket whose envelope holds a 65 537-byte (64 KiB + 1) message with 1009", async () => {
    const { socket, closed } = await wsUpgrade(`/ws/protocol.voice.v1.VoiceService/Connect?access_token=${await tokenFor(unique("b"))}`);
    socket.send(encodeEnvelope(0, new Uint8Array(65_536 + 1)));
    expect((await closed).code).toBe(1009);
  });

  it("closes a /ws socket whose envelope length is not its message's with 1002", async () => {
    const { socket, closed } = await wsUpgrade(`/ws/protocol.voice.v1.VoiceService/Connect?access_token=${await tokenFor(unique("b"))}`);
    const envelope = encodeEnvelope(0, new Uint8Array(10));
    new DataView(envelope.buffer).setUint32(1, 1000); // says 1000 bytes follow; 10 do
    socket.send(envelope);
    expect((await closed).code).toBe(1002);
  });
});

describe("per-call bounds", () => {

  it("refuses candidate 201 of one side with resource_exhausted, even when all were read", async () => {
    const { host, id, call } = await answeredCallObject();
    // The callee follows the call on a socket and keeps up: the queue bound (MAX_QUEUED_SIGNALS)
    // is never what stops it.
    await followCall(id, "callee", host);
    for (let i = 0; i < 200; i++) {
      const sent = await call.act("caller", "alice", { op: "candidate", candidate: { candidate: candidateLine(i) } });
      if (!sent.ok) throw new Error(`candidate ${i}: ${sent.message}`);
    }
    expect(await call.act("caller", "alice", { op: "candidate", candidate: { candidate: candidateLine(999) } })).toMatchObject({ ok: false, code: Code.ResourceExhausted });
    // The other side has a budget of its own.
    expect((await call.act("callee", host, { op: "candidate", candidate: { candidate: candidateLine(1) } })).ok).toBe(true);
  });

  it("refuses call 65 waiting for one host with resource_exhausted", async () => {
    const name = unique("host");
    const host = env.HOSTS.getByName(name);
    // Online, and busy with a first call: every call after it waits in line.
    await onlineAnswerer(name);
    await host.enqueue(crypto.randomUUID(), Date.now() + 10_000);
    for (let i = 0; i < 64; i++) {
      const queued = await host.enqueue(crypto.randomUUID(), Date.now() + 10_000);
      if (!queued.ok) throw new Error(`call ${i}: ${queued.message}`);
    }
    expect(await host.enqueue(crypto.randomUUID(), Date.now() + 10_000)).toMatchObject({ ok: false, code: Code.ResourceExhausted });
  });

  // 5 hosts are accepted: viam-signaling.test.ts "accepts 5 hosts in rpc-host for OptionalWebRTCConfig".
  it("refuses 6 hosts in rpc-host with invalid_argument", async () => {
    const hosts = Array.from({ length: 6 }, (_, i) => `h${i}`).join(",");
    const client = clientFor(SignalingService, { authorization: `Bearer ${await tokenFor("h0")}`, "rpc-host": hosts });
    expect(await codeOf(client.optionalWebRTCConfig({}))).toBe(Code.InvalidArgument);
  });
});

describe("names: 1–128 of A–Z a–z 0–9 . _ : @ - at every door", () => {
  const bad = ["", "a b", "a/b", "ä", "<script>", "a\u0000b", "x".repeat(129)];
  const good = ["a", "alice@example.org", "host:1", "A.b_c-d", "x".repeat(128)];

  it("the pattern itself", () => {
    for (const name of bad) expect(NAME_PATTERN.test(name)).toBe(false);
    for (const name of good) expect(NAME_PATTERN.test(name)).toBe(true);
  });

  it("bearer tokens (every Connect door, /audio, /ws, /calls): a sub outside the pattern is unauthenticated", async () => {
    for (const name of bad.filter(Boolean)) {
      const client = clientFor(SignalingService, { authorization: `Bearer ${await tokenFor(name)}`, "rpc-host": "host" });
      expect(await codeOf(client.callUpdate({ uuid: crypto.randomUUID(), update: { case: "done", value: true } }))).toBe(Code.Unauthenticated);
    }
  });

  it("Viam rpc-host: a host outside the pattern is invalid_argument", async () => {
    for (const name of ["a b", "a/b", "x".repeat(129)]) {
      const client = clientFor(SignalingService, { authorization: `Bearer ${await tokenFor("alice")}`, "rpc-host": name });
      expect(await codeOf(client.optionalWebRTCConfig({}))).toBe(Code.InvalidArgument);
    }
  });

  it("audio relay: a room outside the pattern is refused with 400", async () => {
    const token = await tokenFor("alice");
    for (const room of ["a%20b", "%C3%A4", "x".repeat(129)]) {
      const res = await exports.default.fetch(`http://worker.test/audio/${room}?access_token=${token}`, { headers: { upgrade: "websocket" } });
      expect(res.status).toBe(400);
    }
  });

  it("SIP: account, callee and transfer names outside the pattern are invalid_argument", async () => {
    expect(await codeOf(clientFor(Sip, {}).registerAccount({ accountName: "a b", password: "pw" }))).toBe(Code.InvalidArgument);
    const { name, sip } = await sipAccount("alice");
    await sip.startSession({ accountName: name, autoAnswerInterval: 0 });
    expect(await codeOf(sip.startCall({ calleeId: "a/b" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(sip.transferCall({ transferId: "x".repeat(129) }))).toBe(Code.InvalidArgument);
    // Basic credentials naming an account outside the pattern prove nothing.
    const stranger = clientFor(Sip, { authorization: `Basic ${btoa("a b:pw")}` });
    expect(await codeOf(stranger.getSipStatus({}))).toBe(Code.Unauthenticated);
  });

  it("LiveKit: a token whose identity or room is outside the pattern is refused with 401", async () => {
    for (const [identity, room] of [["a b", "room"], ["alice", "room/1"], ["alice", "x".repeat(129)]]) {
      const res = await exports.default.fetch(`http://worker.test/rtc/validate?access_token=${await liveKitToken(identity, room)}`);
      expect(res.status).toBe(401);
    }
    const ok = await exports.default.fetch(`http://worker.test/rtc/validate?access_token=${await liveKitToken("alice", "room-1")}`);
    expect(ok.status).toBe(200);
  });

  it("dev tokens: an identity outside the pattern is invalid_argument (dev-tokens.test.ts), a call id that is no UUID too", async () => {
    const err = await errorOf(clientFor(SignalingService, { authorization: `Bearer ${await tokenFor("alice")}`, "rpc-host": "h" })
      .callUpdate({ uuid: "../../etc", update: { case: "done", value: true } }));
    expect(err.code).toBe(Code.InvalidArgument);
  });
});

// The ondewo.sip.Sip door through the real Worker, SipAccount, CallObject, HostObject and AudioRoom
// objects, with the generated Connect client. vitest.config.ts sets the ring timeout to 3 s.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, createClient, type Client } from "@connectrpc/connect";
import { createFetchClient } from "@connectrpc/connect/protocol";
import { createTransport } from "@connectrpc/connect/protocol-connect";
import { encodeWaveFromBuffer, SampleFormat as WaveFormat } from "@echogarden/wave-codec";
import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { Sip, SipStatus_StatusType as S, type SipStatus } from "../proto/gen/ondewo/sip/sip_pb";
import { SignalingService } from "../proto/gen/proto/rpc/webrtc/v1/signaling_pb";
import { ClientSignalSchema, VoiceService } from "../proto/gen/protocol/voice/v1/voice_pb";
import { AudioMessageType, decode, encode } from "../codecs/audio-codec";
import { clientFor, pushable } from "./connect-clients";
import { tokenFor } from "./tokens";
import { waitForSipStatus } from "./sip-status";
import { codeOf, errorOf } from "./rpc-outcomes";

type SipClient = Client<typeof Sip>;

let seq = 0;
const uniqueName = (who: string) => `${who}-${Date.now().toString(36)}-${seq++}`;
const basic = (account: string, password: string) => `Basic ${btoa(`${account}:${password}`)}`;
const sipAs = (account: string, password = `pw of ${account}`) => clientFor(Sip, { authorization: basic(account, password) });

/** A registered account and its client. */
async function account(who: string): Promise<{ name: string; sip: SipClient }> {
  const name = uniqueName(who);
  await clientFor(Sip, { authorization: `Bearer ${await tokenFor(name)}` }).registerAccount({ accountName: name, password: `pw of ${name}` });
  return { name, sip: sipAs(name) };
}

async function withSession(who: string, autoAnswerInterval = 0) {
  const a = await account(who);
  await a.sip.startSession({ accountName: a.name, autoAnswerInterval });
  return a;
}

function waitForStatus(sip: SipClient, type: S, timeoutMs = 8_000): Promise<SipStatus> {
  return waitForSipStatus(sip, type, timeoutMs, 50);
}

/** The history as names and the fields a test pins down. */
async function historyOf(sip: SipClient) {
  const { statusHistory } = await sip.getSipStatusHistory({});
  return statusHistory.map((s) => ({ type: S[s.statusType], calleeId: s.calleeId, transferCallId: s.transferCallId, headers: s.headers }));
}

const types = async (sip: SipClient) => (await historyOf(sip)).map((s) => s.type);

/** 16 kHz mono 16-bit PCM, the format a SIP leg proposes. */
function wav16k(samples: number, sampleRate = 16_000): Uint8Array {
  const pcm = new Int16Array(samples).map((_, i) => Math.round(Math.sin(i / 5) * 8000));
  return encodeWaveFromBuffer(new Uint8Array(pcm.buffer), sampleRate, 1, 16, WaveFormat.PCM);
}

async function audioSocket(room: string, identity: string): Promise<WebSocket> {
  const res = await exports.default.fetch(`http://worker.test/audio/${room}?access_token=${await tokenFor(identity)}`,
    { headers: { upgrade: "websocket" } });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  ws.accept();
  ws.binaryType = "arraybuffer";
  return ws;
}

function nextPacket(ws: WebSocket, timeoutMs = 5_000) {
  return new Promise<ReturnType<typeof decode>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no audio packet arrived")), timeoutMs);
    ws.addEventListener("message", (e) => { clearTimeout(timer); resolve(decode(new Uint8Array(e.data as ArrayBuffer))); }, { once: true });
  });
}

describe("Sip: the full walk", () => {
  it("registers, calls with auto-answer, plays a WAV, mutes, transfers and hangs up, leaving exact histories on every account", async () => {
    const alice = await withSession("alice");
    const bob = await withSession("bob", 1);
    const carol = await withSession("carol", 1);

    await alice.sip.startCall({ calleeId: bob.name, headers: { "x-case": "walk" } });
    await waitForStatus(alice.sip, S.outgoing_call_connected);
    await waitForStatus(bob.sip, S.incoming_call_connected);
    await alice.sip.playWavFiles({ wavFiles: [wav16k(1_600)] });
    await alice.sip.mute({});
    await alice.sip.unMute({});
    await alice.sip.transferCall({ transferId: carol.name, headers: { "x-transfer": "yes" } });
    await waitForStatus(bob.sip, S.outgoing_call_connected);
    await waitForStatus(carol.sip, S.incoming_call_connected);
    await bob.sip.endCall({ hardHangup: true });
    await waitForStatus(carol.sip, S.incoming_call_finished);

    const a = await historyOf(alice.sip);
    const first = a[2].headers["call-id"];
    const second = (await historyOf(bob.sip))[5].headers["call-id"];
    expect(first).toMatch(/^[0-9a-f-]{36}$/);
    expect(second).toMatch(/^[0-9a-f-]{36}$/);
    expect(second).not.toBe(first);
    const firstHeaders = (muted: boolean) => ({ "x-case": "walk", "call-id": first, "audio-url": `ws://worker.test/audio/${first}`, muted: String(muted) });
    const secondHeaders = { "x-transfer": "yes", "call-id": second, "audio-url": `ws://worker.test/audio/${second}`, muted: "false" };
    const plain = { calleeId: "", transferCallId: "", headers: {} };

    expect(a).toEqual([
      { type: "registered", ...plain },
      { type: "ready", ...plain },
      { type: "outgoing_call_initiated", calleeId: bob.name, transferCallId: "", headers: firstHeaders(false) },
      { type: "outgoing_call_connected", calleeId: bob.name, transferCallId: "", headers: firstHeaders(false) },
      { type: "outgoing_call_connected", calleeId: bob.name, transferCallId: "", headers: firstHeaders(true) },
      { type: "outgoing_call_connected", calleeId: bob.name, transferCallId: "", headers: firstHeaders(false) },
      { type: "transfer_call_initiated", calleeId: bob.name, transferCallId: carol.name, headers: { ...firstHeaders(false), "x-transfer": "yes" } },
      { type: "outgoing_call_finished", calleeId: bob.name, transferCallId: carol.name, headers: firstHeaders(false) },
    ]);
    expect(await historyOf(bob.sip)).toEqual([
      { type: "registered", ...plain },
      { type: "ready", ...plain },
      { type: "incoming_call_initiated", calleeId: alice.name, transferCallId: "", headers: firstHeaders(false) },
      { type: "incoming_call_connected", calleeId: alice.name, transferCallId: "", headers: firstHeaders(false) },
      { type: "incoming_call_finished", calleeId: alice.name, transferCallId: carol.name, headers: firstHeaders(false) },
      { type: "outgoing_call_initiated", calleeId: carol.name, transferCallId: carol.name, headers: secondHeaders },
      { type: "outgoing_call_connected", calleeId: carol.name, transferCallId: carol.name, headers: secondHeaders },
      { type: "hard_hangup_initiated", calleeId: carol.name, transferCallId: carol.name, headers: secondHeaders },
      { type: "outgoing_call_finished", calleeId: carol.name, transferCallId: carol.name, headers: secondHeaders },
    ]);
    expect(await historyOf(carol.sip)).toEqual([
      { type: "registered", ...plain },
      { type: "ready", ...plain },
      { type: "incoming_call_initiated", calleeId: bob.name, transferCallId: "", headers: secondHeaders },
      { type: "incoming_call_connected", calleeId: bob.name, transferCallId: "", headers: secondHeaders },
      { type: "incoming_call_finished", calleeId: bob.name, transferCallId: "", headers: secondHeaders },
    ]);
  });
});

describe("Sip: accounts and authentication", () => {
  it("stores the password only as a salted PBKDF2 hash with its iteration count, 100 000", async () => {
    const { name } = await account("hash");
    const stored = await runInDurableObject(env.SIP_ACCOUNTS.getByName(name), (_instance, state) =>
      state.storage.sql.exec<{ hash: ArrayBuffer; salt: ArrayBuffer; iterations: number }>(
        "SELECT hash, salt, iterations FROM credentials").toArray());
    expect(stored).toHaveLength(1);
    expect(stored[0].iterations).toBe(100_000);
    expect(stored[0].hash.byteLength).toBe(32);
    expect(stored[0].salt.byteLength).toBe(16);
    const text = new TextDecoder().decode(new Uint8Array(stored[0].hash));
    expect(text).not.toContain(`pw of ${name}`);
  });

  it("puts a new account in registered", async () => {
    const { sip } = await account("new");
    expect((await sip.getSipStatus({})).statusType).toBe(S.registered);
  });

  it("refuses to register an existing account again without its credentials", async () => {
    const { name } = await account("taken");
    expect(await codeOf(clientFor(Sip, {}).registerAccount({ accountName: name, password: "mine now" }))).toBe(Code.PermissionDenied);
  });

  it("refuses to register an existing account again with a wrong password", async () => {
    const { name } = await account("taken");
    const intruder = clientFor(Sip, { authorization: basic(name, "guess") });
    expect(await codeOf(intruder.registerAccount({ accountName: name, password: "mine now" }))).toBe(Code.PermissionDenied);
  });

  it("lets an account register again with its own credentials, which changes its password", async () => {
    const { name, sip } = await account("renew");
    await sip.registerAccount({ accountName: name, password: "new password" });
    expect(await codeOf(sip.getSipStatus({}))).toBe(Code.Unauthenticated);
    expect((await sipAs(name, "new password").getSipStatus({})).statusType).toBe(S.registered);
  });

  it("rejects a wrong password with unauthenticated", async () => {
    const { name } = await account("wrong");
    expect(await codeOf(sipAs(name, "not it").getSipStatus({}))).toBe(Code.Unauthenticated);
  });

  it("rejects a request without credentials with unauthenticated", async () => {
    expect(await codeOf(clientFor(Sip, {}).getSipStatus({}))).toBe(Code.Unauthenticated);
  });

  it("accepts a bearer token whose sub is the account", async () => {
    const { name } = await account("bearer");
    const viaToken = clientFor(Sip, { authorization: `Bearer ${await tokenFor(name)}` });
    expect((await viaToken.getSipStatus({})).accountName).toBe(name);
  });

  it("answers a bearer token for an account never registered with failed_precondition", async () => {
    const viaToken = clientFor(Sip, { authorization: `Bearer ${await tokenFor(uniqueName("ghost"))}` });
    const err = await errorOf(viaToken.getSipStatus({}));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.rawMessage).toContain("not registered");
  });

  it("refuses a session for another account name with permission_denied", async () => {
    const { sip } = await account("self");
    expect(await codeOf(sip.startSession({ accountName: "someone-else", autoAnswerInterval: 0 }))).toBe(Code.PermissionDenied);
  });
});

describe("Sip: sessions and wrong states", () => {
  it("moves to ready on StartSession and to no_session on EndSession", async () => {
    const { name, sip } = await account("session");
    await sip.startSession({ accountName: name, autoAnswerInterval: 0 });
    expect((await sip.getSipStatus({})).statusType).toBe(S.ready);
    await sip.endSession({});
    expect(await types(sip)).toEqual(["registered", "ready", "no_session"]);
  });

  it("refuses StartCall without a session with failed_precondition naming the state", async () => {
    const { sip } = await account("nosession");
    const err = await errorOf(sip.startCall({ calleeId: "anyone", headers: {} }));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.rawMessage).toContain("state registered");
  });

  it("refuses EndCall without a call with failed_precondition naming the state", async () => {
    const { sip } = await withSession("nocall");
    const err = await errorOf(sip.endCall({ hardHangup: false }));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.rawMessage).toContain("state ready");
  });

  it("refuses a second StartSession with failed_precondition", async () => {
    const { name, sip } = await withSession("twice");
    expect(await codeOf(sip.startSession({ accountName: name, autoAnswerInterval: 0 }))).toBe(Code.FailedPrecondition);
  });

  it("refuses EndSession without a session with failed_precondition", async () => {
    const { sip } = await account("nothing");
    expect(await codeOf(sip.endSession({}))).toBe(Code.FailedPrecondition);
  });

  it("refuses Mute without a call with failed_precondition", async () => {
    const { sip } = await withSession("mute");
    expect(await codeOf(sip.mute({}))).toBe(Code.FailedPrecondition);
  });

  it("refuses TransferCall without a connected call with failed_precondition", async () => {
    const { sip } = await withSession("transfer");
    expect(await codeOf(sip.transferCall({ transferId: "someone", headers: {} }))).toBe(Code.FailedPrecondition);
  });

  it("refuses an auto-answer interval that is not below the ring timeout", async () => {
    const { name, sip } = await account("slow");
    expect(await codeOf(sip.startSession({ accountName: name, autoAnswerInterval: 3 }))).toBe(Code.InvalidArgument);
  });

  it("refuses a header the server sets itself", async () => {
    const { sip } = await withSession("header");
    expect(await codeOf(sip.startCall({ calleeId: "someone", headers: { "call-id": "mine" } }))).toBe(Code.InvalidArgument);
  });

  it("ends a call before ending the session", async () => {
    const alice = await withSession("alice");
    const bob = await withSession("bob", 1);
    await alice.sip.startCall({ calleeId: bob.name, headers: {} });
    await waitForStatus(alice.sip, S.outgoing_call_connected);
    await alice.sip.endSession({});
    expect((await types(alice.sip)).slice(-3)).toEqual(["hard_hangup_initiated", "outgoing_call_finished", "no_session"]);
    await waitForStatus(bob.sip, S.incoming_call_finished);
  });
});

describe("Sip: a session waiting for calls", () => {
  it("stands online at its host with no alarm to renew anything, and leaves when the session ends", async () => {
    const { name, sip } = await withSession("waits");
    const host = env.HOSTS.getByName(name);
    expect((await host.status()).online).toBe(true);
    // Waiting wakes nothing: the account has no alarm pending.
    expect(await runInDurableObject(env.SIP_ACCOUNTS.getByName(name), (_o, state) => state.storage.getAlarm())).toBeNull();
    await sip.endSession({});
    expect((await host.status()).online).toBe(false);
  });

  it("leaves again when its host rings it while it should not stand (a leave that never arrived)", async () => {
    const { name } = await account("stale");
    const host = env.HOSTS.getByName(name);
    // A standing row left behind: the account has no session.
    await host.stand(name, Number.MAX_SAFE_INTEGER);
    expect((await host.enqueue(crypto.randomUUID(), Date.now() + 10_000)).ok).toBe(true);
    for (let i = 0; i < 100 && (await host.status()).answerers > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect((await host.status()).answerers).toBe(0);
  });
});

describe("Sip: calls", () => {
  it("fails a call to an unknown callee with outgoing_call_failed", async () => {
    const alice = await withSession("alice");
    await alice.sip.startCall({ calleeId: uniqueName("nobody"), headers: {} });
    const status = await alice.sip.getSipStatus({});
    expect(status.statusType).toBe(S.outgoing_call_failed);
    expect(status.headers.reason).toContain("is not online");
  });

  it("fails a call to a registered callee without a session with outgoing_call_failed", async () => {
    const alice = await withSession("alice");
    const bob = await account("bob");
    await alice.sip.startCall({ calleeId: bob.name, headers: {} });
    expect((await alice.sip.getSipStatus({})).statusType).toBe(S.outgoing_call_failed);
    expect(await types(bob.sip)).toEqual(["registered"]);
  });

  it("rings a callee without auto-answer until the ring timeout fails the call on both sides", async () => {
    const alice = await withSession("alice");
    const bob = await withSession("bob");
    await alice.sip.startCall({ calleeId: bob.name, headers: { topic: "ring" } });
    const ringing = await waitForStatus(bob.sip, S.incoming_call_initiated);
    expect(ringing.headers.topic).toBe("ring");
    const failed = await waitForStatus(alice.sip, S.outgoing_call_failed, 6_000);
    expect(failed.headers.reason).toContain("ring timeout");
    await waitForStatus(bob.sip, S.incoming_call_failed, 6_000);
  });

  it("connects a ringing call when the callee accepts its audio in the relay", async () => {
    const alice = await withSession("alice");
    const bob = await withSession("bob");
    await alice.sip.startCall({ calleeId: bob.name, headers: {} });
    const ringing = await waitForStatus(bob.sip, S.incoming_call_initiated);
    const ws = await audioSocket(ringing.headers["call-id"], bob.name);
    const handshake = await nextPacket(ws);
    expect(handshake).toMatchObject({ type: AudioMessageType.Handshake, username: alice.name });
    ws.send(encode({ type: AudioMessageType.Accept, optional: new Uint8Array(0) }));
    await waitForStatus(alice.sip, S.outgoing_call_connected);
    await waitForStatus(bob.sip, S.incoming_call_connected);
    ws.close(1000);
  });

  it("fails the call when the callee rejects its audio in the relay", async () => {
    const alice = await withSession("alice");
    const bob = await withSession("bob");
    await alice.sip.startCall({ calleeId: bob.name, headers: {} });
    const ringing = await waitForStatus(bob.sip, S.incoming_call_initiated);
    const ws = await audioSocket(ringing.headers["call-id"], bob.name);
    await nextPacket(ws);
    ws.send(encode({ type: AudioMessageType.Reject, optional: new Uint8Array(0) }));
    const failed = await waitForStatus(alice.sip, S.outgoing_call_failed);
    expect(failed.headers.reason).toContain("declined");
    await waitForStatus(bob.sip, S.incoming_call_failed);
  });

  it("ends the call on both sides with a soft hangup once nothing is left to play", async () => {
    const alice = await withSession("alice");
    const bob = await withSession("bob", 1);
    await alice.sip.startCall({ calleeId: bob.name, headers: {} });
    await waitForStatus(alice.sip, S.outgoing_call_connected);
    await alice.sip.endCall({ hardHangup: false });
    await waitForStatus(alice.sip, S.outgoing_call_finished);
    expect((await types(alice.sip)).slice(-2)).toEqual(["soft_hangup_initiated", "outgoing_call_finished"]);
    await waitForStatus(bob.sip, S.incoming_call_finished);
  });

  it("lets the callee decline a ringing call, which fails it for the caller", async () => {
    const alice = await withSession("alice");
    const bob = await withSession("bob");
    await alice.sip.startCall({ calleeId: bob.name, headers: {} });
    await waitForStatus(bob.sip, S.incoming_call_initiated);
    await bob.sip.endCall({ hardHangup: true });
    expect((await types(bob.sip)).slice(-2)).toEqual(["hard_hangup_initiated", "incoming_call_finished"]);
    const failed = await waitForStatus(alice.sip, S.outgoing_call_failed);
    expect(failed.headers.reason).toContain("declined");
  });

  it("makes the SIP call visible in the shared call model as a call from the sip door", async () => {
    const alice = await withSession("alice");
    const bob = await withSession("bob", 1);
    await alice.sip.startCall({ calleeId: bob.name, headers: {} });
    const connected = await waitForStatus(alice.sip, S.outgoing_call_connected);
    const summary = await env.CALLS.getByName(connected.headers["call-id"]).summary();
    expect(summary).toMatchObject({ ok: true, value: { host: bob.name, caller: { identity: alice.name, door: "sip" },
      callee: { identity: bob.name, door: "sip" } } });
    await alice.sip.endCall({ hardHangup: true });
  });

  it("refuses a transfer to the call's other party with invalid_argument", async () => {
    const alice = await withSession("alice");
    const bob = await withSession("bob", 1);
    await alice.sip.startCall({ calleeId: bob.name, headers: {} });
    await waitForStatus(alice.sip, S.outgoing_call_connected);
    expect(await codeOf(alice.sip.transferCall({ transferId: bob.name, headers: {} }))).toBe(Code.InvalidArgument);
    expect((await alice.sip.getSipStatus({})).statusType).toBe(S.outgoing_call_connected);
    await alice.sip.endCall({ hardHangup: true });
  });

  it("refuses a transfer to an account nobody answers for with failed_precondition, and the call stays up", async () => {
    const alice = await withSession("alice");
    const bob = await withSession("bob", 1);
    const carol = await account("carol"); // registered, no session: not online
    await alice.sip.startCall({ calleeId: bob.name, headers: {} });
    await waitForStatus(alice.sip, S.outgoing_call_connected);
    const err = await errorOf(alice.sip.transferCall({ transferId: carol.name, headers: {} }));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.rawMessage).toContain("not online");
    expect((await alice.sip.getSipStatus({})).statusType).toBe(S.outgoing_call_connected);
    expect((await bob.sip.getSipStatus({})).statusType).toBe(S.incoming_call_connected);
    await alice.sip.endCall({ hardHangup: true });
  });
});

describe("Sip: audio", () => {
  it("relays a played WAV to the callee's audio socket byte for byte", async () => {
    const alice = await withSession("alice");
    const bob = await withSession("bob");
    await alice.sip.startCall({ calleeId: bob.name, headers: {} });
    const ringing = await waitForStatus(bob.sip, S.incoming_call_initiated);
    const ws = await audioSocket(ringing.headers["call-id"], bob.name);
    await nextPacket(ws);
    ws.send(encode({ type: AudioMessageType.Accept, optional: new Uint8Array(0) }));
    await waitForStatus(alice.sip, S.outgoing_call_connected);
    const samples = new Int16Array(800).map((_, i) => (i * 37) % 30000 - 15000);
    const received: Uint8Array[] = [];
    const all = new Promise<void>((resolve) => ws.addEventListener("message", (e) => {
      const packet = decode(new Uint8Array(e.data as ArrayBuffer));
      if (packet.type === AudioMessageType.Data) received.push(packet.data.slice());
      if (received.reduce((n, b) => n + b.byteLength, 0) >= samples.byteLength) resolve();
    }));
    await alice.sip.playWavFiles({ wavFiles: [encodeWaveFromBuffer(new Uint8Array(samples.buffer), 16_000, 1, 16, WaveFormat.PCM)] });
    await all;
    const got = new Uint8Array(received.reduce((n, b) => n + b.byteLength, 0));
    received.reduce((at, b) => { got.set(b, at); return at + b.byteLength; }, 0);
    expect(got).toEqual(new Uint8Array(samples.buffer));
    expect(received[0].byteLength).toBe(640);
    ws.close(1000);
  });

  it("refuses a malformed WAV with invalid_argument", async () => {
    const { sip } = await withSession("badwav");
    const err = await errorOf(sip.playWavFiles({ wavFiles: [new TextEncoder().encode("RIFF but not really")] }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.rawMessage).toContain("wav_files[0]");
  });

  it("refuses 33 WAV files with resource_exhausted", async () => {
    const { sip } = await withSession("many");
    const files = Array.from({ length: 33 }, () => wav16k(16));
    const err = await errorOf(sip.playWavFiles({ wavFiles: files }));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.rawMessage).toContain("at most 32");
  });

  it("takes 32 WAV files past its bounds (then refuses them for want of a call)", async () => {
    const { sip } = await withSession("thirty-two");
    const files = Array.from({ length: 32 }, () => wav16k(16));
    const err = await errorOf(sip.playWavFiles({ wavFiles: files }));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.rawMessage).toContain("state ready");
  });

  /** A Sip client with room to send 4 MiB and more: the shared test client refuses more than 1 MiB. */
  function roomySip(name: string) {
    return createClient(Sip, createTransport({
      httpClient: createFetchClient((req) => exports.default.fetch(req)), baseUrl: "http://worker.test",
      useBinaryFormat: true, interceptors: [(next) => (req) => { req.header.set("authorization", basic(name, `pw of ${name}`)); return next(req); }],
      acceptCompression: [], sendCompression: null, compressMinBytes: 1024, readMaxBytes: 1 << 20, writeMaxBytes: 8 << 20,
    }));
  }

  /** A WAV of exactly 2 MiB (a 44-byte header and 16-bit samples), and the same with one byte more. */
  const twoMib = () => {
    const wav = wav16k((2 * 1024 * 1024 - 44) / 2);
    expect(wav.byteLength).toBe(2_097_152);
    return wav;
  };

  it("refuses WAV files of 4 MiB + 1 byte in total with resource_exhausted", async () => {
    const { name } = await withSession("large-sender");
    const half = twoMib();
    const longer = new Uint8Array(half.byteLength + 1);
    longer.set(half);
    const err = await errorOf(roomySip(name).playWavFiles({ wavFiles: [half, longer] }));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.rawMessage).toContain("4194305 bytes of WAV files; at most 4194304");
  });

  it("takes WAV files of exactly 4 MiB in total past its bounds (then refuses them for want of a call)", async () => {
    const { name } = await withSession("four-mib-sender");
    const half = twoMib();
    const err = await errorOf(roomySip(name).playWavFiles({ wavFiles: [half, half] }));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.rawMessage).toContain("state ready");
  });

  it("refuses PlayWavFiles without a connected call with failed_precondition", async () => {
    const { sip } = await withSession("idle");
    const err = await errorOf(sip.playWavFiles({ wavFiles: [wav16k(160)] }));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.rawMessage).toContain("state ready");
  });

  it("refuses a WAV whose sample rate differs from the call's with invalid_argument", async () => {
    const alice = await withSession("alice");
    const bob = await withSession("bob", 1);
    await alice.sip.startCall({ calleeId: bob.name, headers: {} });
    await waitForStatus(alice.sip, S.outgoing_call_connected);
    const err = await errorOf(alice.sip.playWavFiles({ wavFiles: [wav16k(800, 8_000)] }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.rawMessage).toContain("8000 Hz");
    await alice.sip.endCall({ hardHangup: true });
  });

  it("shows the mute state in the muted header of the statuses", async () => {
    const alice = await withSession("alice");
    const bob = await withSession("bob", 1);
    await alice.sip.startCall({ calleeId: bob.name, headers: {} });
    await waitForStatus(alice.sip, S.outgoing_call_connected);
    await alice.sip.mute({});
    expect((await alice.sip.getSipStatus({})).headers.muted).toBe("true");
    await alice.sip.unMute({});
    expect((await alice.sip.getSipStatus({})).headers.muted).toBe("false");
    await alice.sip.endCall({ hardHangup: true });
  });
});

describe("Sip: calls through other doors", () => {
  it("connects a SIP call that the callee answers on a Voice stream", async () => {
    const alice = await withSession("alice");
    const bob = uniqueName("bob");
    const outbox = pushable<MessageInitShape<typeof ClientSignalSchema>>();
    const voice = clientFor(VoiceService, { authorization: `Bearer ${await tokenFor(bob)}` }).connect(outbox)[Symbol.asyncIterator]();
    for (let i = 0; i < 100 && !(await env.HOSTS.getByName(bob).status()).online; i++) await new Promise((r) => setTimeout(r, 20));
    await alice.sip.startCall({ calleeId: bob, headers: {} });
    const offer = await voice.next();
    expect(offer.value?.event.case).toBe("offer");
    outbox.push({ event: { case: "answer", value: { answer: "v=0\r\nanswer\r\n" } } });
    await waitForStatus(alice.sip, S.outgoing_call_connected);
    await alice.sip.endCall({ hardHangup: true });
    outbox.close();
    while (!(await voice.next()).done) { /* the stream ends once the call has */ }
  });

  it("rings a SIP account for a call placed through the Viam door, and auto-answers it", async () => {
    const bob = await withSession("bob", 1);
    const caller = uniqueName("viam-caller");
    const viam = clientFor(SignalingService, { authorization: `Bearer ${await tokenFor(caller)}`, "rpc-host": bob.name });
    const responses = viam.call({ sdp: "v=0\r\noffer\r\n" })[Symbol.asyncIterator]();
    const ringing = await waitForStatus(bob.sip, S.incoming_call_initiated);
    expect(ringing.calleeId).toBe(caller);
    const init = await responses.next();
    expect(init.value?.stage.case).toBe("init");
    await waitForStatus(bob.sip, S.incoming_call_connected);
    await bob.sip.endCall({ hardHangup: true });
    while (!(await responses.next()).done) { /* ends OK after the hang-up */ }
  });
});

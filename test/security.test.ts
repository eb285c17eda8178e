// The holes a security probe found (issue 16), each pinned through the real Worker and objects:
// a caller's token handed to the callee, squatted SIP names, free password guessing, unbounded
// answerer streams and audio rooms, credentialed CORS for any origin, and smaller ones.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { env, exports } from "cloudflare:workers";
import { decode as decodeJwt, sign } from "hono/jwt";
import { describe, expect, it } from "vitest";
import { Sip, SipStatus_StatusType as S } from "../proto/gen/ondewo/sip/sip_pb";
import { AnswerResponseSchema, SignalingService, type AnswerRequest } from "../proto/gen/proto/rpc/webrtc/v1/signaling_pb";
import { ClientSignalSchema, VoiceService } from "../proto/gen/protocol/voice/v1/voice_pb";
import { AudioMessageType, decode, SampleFormat } from "../codecs/audio-codec";
import { verifyIdentity } from "../worker/auth";
import { verifyCallerProof } from "../worker/caller-proof";
import { clientFor, pushable } from "./connect-clients";
import { AudioSocket, codeOf, errorOf, sleep, unique, viamCall, waitOnline } from "./door-clients";
import { TEST_AUTH_SECRET } from "./test-secret";
import { tokenFor } from "./tokens";

const bearer = async (identity: string) => ({ authorization: `Bearer ${await tokenFor(identity)}` });
const basic = (account: string, password: string) => `Basic ${btoa(`${account}:${password}`)}`;

/** A Viam Answer stream for `host`: the stages it receives, one at a time. */
async function answerStream(host: string) {
  const outbox = pushable<MessageInitShape<typeof AnswerResponseSchema>>();
  const client = clientFor(SignalingService, { ...(await bearer(host)), "rpc-host": host });
  const stream = client.answer(outbox)[Symbol.asyncIterator]();
  return {
    outbox,
    next: async (): Promise<AnswerRequest | null> => {
      const r = await stream.next();
      return r.done ? null : r.value;
    },
  };
}

/** alice calls a fresh host; the host's Answer stream receives the init stage. */
async function offeredToHost() {
  const host = unique("machine");
  const answerer = await answerStream(host);
  await waitOnline(host);
  const caller = await viamCall("alice", host);
  const init = (await answerer.next())!;
  expect(init.stage.case).toBe("init");
  const proof = (init.stage.case === "init" ? init.stage.value.callerAuthToken : undefined) ?? "";
  return { host, answerer, caller, uuid: init.uuid, proof };
}

async function sipAccount(who: string) {
  const name = unique(who);
  await clientFor(Sip, await bearer(name)).registerAccount({ accountName: name, password: `pw of ${name}` });
  return name;
}

describe("the caller_auth_token an answering host receives", () => {
  it("is not the caller's bearer token but a proof bound to the caller, the host and the call", async () => {
    const { host, uuid, proof } = await offeredToHost();
    expect(proof).not.toBe("");
    const { payload } = decodeJwt(proof);
    expect(payload).toMatchObject({ sub: "alice", aud: host, call: uuid });
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(60);
    expect(await verifyCallerProof(TEST_AUTH_SECRET, proof, host, uuid)).toBe("alice");
    expect(await verifyCallerProof(TEST_AUTH_SECRET, proof, host, crypto.randomUUID())).toBeUndefined();
    expect(await verifyCallerProof(TEST_AUTH_SECRET, proof, "another-host", uuid)).toBeUndefined();
  });

  it("is refused as a login by every door", async () => {
    const { host, uuid, proof } = await offeredToHost();
    const asProof = { authorization: `Bearer ${proof}` };
    // Viam: as the caller, and as the caller answering for itself.
    const viam = clientFor(SignalingService, { ...asProof, "rpc-host": host });
    expect(await codeOf((async () => { for await (const _ of viam.call({ sdp: "offer" })) { /* drain */ } })())).toBe(Code.Unauthenticated);
    expect(await codeOf(viam.callUpdate({ uuid, update: { case: "done", value: true } }))).toBe(Code.Unauthenticated);
    const asAlice = clientFor(SignalingService, { ...asProof, "rpc-host": "alice" });
    expect(await codeOf(asAlice.answer(pushable())[Symbol.asyncIterator]().next())).toBe(Code.Unauthenticated);
    // Voice.
    const voice = clientFor(VoiceService, asProof).connect(pushable<MessageInitShape<typeof ClientSignalSchema>>());
    expect(await codeOf(voice[Symbol.asyncIterator]().next())).toBe(Code.Unauthenticated);
    // SIP: read alice's account, or register it anew.
    const sip = clientFor(Sip, asProof);
    expect(await codeOf(sip.getSipStatusHistory({}))).toBe(Code.Unauthenticated);
    expect(await codeOf(sip.registerAccount({ accountName: "alice", password: "taken over" }))).toBe(Code.Unauthenticated);
    // Plain HTTP and WebSocket doors.
    const history = await exports.default.fetch(`http://worker.test/calls/${uuid}/history`, { headers: asProof });
    expect(history.status).toBe(401);
    const audio = await exports.default.fetch(`http://worker.test/audio/room-1?access_token=${proof}`, { headers: { upgrade: "websocket" } });
    expect(audio.status).toBe(401);
  });

  it("would be refused even if it were signed with the login secret, because it names an audience", async () => {
    const now = Math.floor(Date.now() / 1000);
    const forged = await sign({ sub: "alice", aud: "bob", call: crypto.randomUUID(), iat: now, exp: now + 60 }, TEST_AUTH_SECRET, "HS256");
    const refused = await verifyIdentity(forged, TEST_AUTH_SECRET);
    expect(refused).toMatchObject({ ok: false, code: Code.Unauthenticated });
  });
});

describe("SIP account names and token identities", () => {
  it("refuses to create an account without a bearer token for its name", async () => {
    const name = unique("squatted");
    const err = await errorOf(clientFor(Sip, {}).registerAccount({ accountName: name, password: "mine" }));
    expect(err.code).toBe(Code.Unauthenticated);
    expect(err.rawMessage).toContain("bearer token");
  });

  it("refuses to create an account with another identity's token", async () => {
    expect(await codeOf(clientFor(Sip, await bearer("mallory")).registerAccount({ accountName: unique("bob"), password: "mine" })))
      .toBe(Code.PermissionDenied);
  });

  it("leaves a name nobody registered free, so a Viam call to that identity finds no squatter", async () => {
    const bob = unique("bob");
    await clientFor(Sip, {}).registerAccount({ accountName: bob, password: "squat" }).catch(() => undefined);
    const squatter = clientFor(Sip, { authorization: basic(bob, "squat") });
    expect(await codeOf(squatter.startSession({ accountName: bob, autoAnswerInterval: 1 }))).toBe(Code.Unauthenticated);
    const call = await viamCall("alice", bob);
    expect(await codeOf(call.next())).toBe(Code.NotFound);
  });
});

describe("wrong SIP passwords", () => {
  const from = (address: string, account: string, password: string) =>
    clientFor(Sip, { authorization: basic(account, password), "cf-connecting-ip": address });

  it("are refused with resource_exhausted after 5 from one address, even the right one, while the owner's address still works", async () => {
    const name = await sipAccount("guessed");
    expect((await from("198.51.100.1", name, `pw of ${name}`).getSipStatus({})).statusType).toBe(S.registered);
    for (let i = 0; i < 5; i++) expect(await codeOf(from("203.0.113.9", name, `guess ${i}`).getSipStatus({}))).toBe(Code.Unauthenticated);
    expect(await codeOf(from("203.0.113.9", name, "guess 5").getSipStatus({}))).toBe(Code.ResourceExhausted);
    expect(await codeOf(from("203.0.113.9", name, `pw of ${name}`).getSipStatus({}))).toBe(Code.ResourceExhausted);
    expect((await from("198.51.100.1", name, `pw of ${name}`).getSipStatus({})).statusType).toBe(S.registered);
  });

  it("past 20 for one account from many addresses, refuse new addresses but not the owner's, nor its bearer token", async () => {
    const name = await sipAccount("sprayed");
    expect((await from("198.51.100.2", name, `pw of ${name}`).getSipStatus({})).statusType).toBe(S.registered);
    for (let i = 0; i < 20; i++) {
      expect(await codeOf(from(`203.0.113.${i + 1}`, name, `guess ${i}`).getSipStatus({}))).toBe(Code.Unauthenticated);
    }
    expect(await codeOf(from("192.0.2.77", name, `pw of ${name}`).getSipStatus({}))).toBe(Code.ResourceExhausted);
    expect((await from("198.51.100.2", name, `pw of ${name}`).getSipStatus({})).statusType).toBe(S.registered);
    expect((await clientFor(Sip, await bearer(name)).getSipStatus({})).statusType).toBe(S.registered);
  });
});

describe("held resources per host and per identity", () => {
  it("opens 16 answerer streams for one host and refuses the 17th with resource_exhausted", async () => {
    const host = unique("crowded");
    const streams = await Promise.all(Array.from({ length: 16 }, () => answerStream(host)));
    for (let i = 0; i < 200 && (await env.HOSTS.getByName(host).status()).answerers < 16; i++) await sleep(20);
    expect((await env.HOSTS.getByName(host).status()).answerers).toBe(16);
    const extra = await answerStream(host);
    expect(await codeOf(extra.next())).toBe(Code.ResourceExhausted);
    for (const s of streams) s.outbox.close();
  });

  it("lets one identity into 8 audio rooms, closes a 9th with 1008 and a reason, and frees a seat when it leaves a room", async () => {
    const who = unique("roomer");
    const rooms = await Promise.all(Array.from({ length: 8 }, (_, i) => AudioSocket.join(`${who}-room-${i}`, who)));
    for (const r of rooms) await r.expectNothingPending();
    const ninth = await AudioSocket.join(`${who}-room-8`, who);
    const closed = await ninth.closed;
    expect(closed.code).toBe(1008);
    expect(closed.reason).toContain("8 audio rooms");
    rooms[0].ws.close(1000, "bye");
    await rooms[0].closed;
    for (let i = 0; i < 100 && await env.AUDIO_ROOMS.getByName(`${who}-room-0`).holds(who); i++) await sleep(20);
    const again = await AudioSocket.join(`${who}-room-8`, who);
    await again.expectNothingPending();
  });
});

describe("CORS", () => {
  it("allows any origin without credentials", async () => {
    const preflight = await exports.default.fetch("http://worker.test/ondewo.sip.Sip/GetSipStatus", { method: "OPTIONS", headers: {
      origin: "https://evil.example", "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type",
    } });
    expect(preflight.headers.get("access-control-allow-origin")).toBe("*");
    expect(preflight.headers.get("access-control-allow-credentials")).toBeNull();
    expect(preflight.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("authorization");
    const get = await exports.default.fetch("http://worker.test/healthz", { headers: { origin: "https://evil.example" } });
    expect(get.headers.get("access-control-allow-origin")).toBe("*");
    expect(get.headers.get("access-control-allow-credentials")).toBeNull();
  });

  it("allows credentials only to an origin in CORS_CREDENTIAL_ORIGINS", async () => {
    const res = await exports.default.fetch("http://worker.test/healthz", { headers: { origin: "https://app.example" } });
    expect(res.headers.get("access-control-allow-origin")).toBe("https://app.example");
    expect(res.headers.get("access-control-allow-credentials")).toBe("true");
  });
});

describe("tokens", () => {
  const signed = (claims: Record<string, unknown>) => sign(claims, TEST_AUTH_SECRET, "HS256");
  const statusWith = async (token: string) => codeOf(clientFor(Sip, { authorization: `Bearer ${token}` }).getSipStatus({}));

  it("refuses a token without exp", async () => {
    expect(await statusWith(await signed({ sub: "alice" }))).toBe(Code.Unauthenticated);
  });

  it("accepts a lifetime of exactly 30 days and refuses one second more", async () => {
    const name = await sipAccount("lifetime");
    const iat = Math.floor(Date.now() / 1000);
    expect(await statusWith(await signed({ sub: name, iat, exp: iat + 2_592_000 }))).toBe("ok");
    expect(await statusWith(await signed({ sub: name, iat, exp: iat + 2_592_001 }))).toBe(Code.Unauthenticated);
    expect(await statusWith(await signed({ sub: name, exp: iat + 2_592_060 }))).toBe(Code.Unauthenticated);
  });

  it("answers internal without detail when AUTH_SECRET is missing", async () => {
    const refused = await verifyIdentity(await tokenFor("alice"), undefined);
    expect(refused).toMatchObject({ ok: false, code: Code.Internal, message: "internal error" });
  });
});

describe("SIP input", () => {
  for (const [what, value] of [["CR/LF", "a\r\nVia: forged"], ["LF", "a\nb"], ["NUL", "a\0b"]] as const) {
    it(`refuses a header value holding ${what} with invalid_argument`, async () => {
      const name = await sipAccount("headers");
      const sip = clientFor(Sip, await bearer(name));
      await sip.startSession({ accountName: name, autoAnswerInterval: 0 });
      expect(await codeOf(sip.startCall({ calleeId: unique("callee"), headers: { "X-Note": value } }))).toBe(Code.InvalidArgument);
    });
  }
});

describe("an idle SIP audio leg", () => {
  it("rejects a handshake from anyone but the call's other party", async () => {
    const bob = await sipAccount("bob");
    const sip = clientFor(Sip, await bearer(bob));
    await sip.startSession({ accountName: bob, autoAnswerInterval: 1 });
    await waitOnline(bob);
    const caller = await viamCall("alice", bob);
    const init = await caller.next();
    const callId = init!.uuid;
    for (let i = 0; i < 250 && !(await env.AUDIO_ROOMS.getByName(callId).holds(bob)); i++) await sleep(20);
    expect(await env.AUDIO_ROOMS.getByName(callId).holds(bob)).toBe(true);
    const mallory = await AudioSocket.join(callId, unique("mallory"));
    mallory.send({ type: AudioMessageType.Handshake, username: bob, optional: new Uint8Array(),
      params: { sampleRate: 16_000, channels: 1, format: SampleFormat.Int16, chunkSize: 320 } });
    expect(decode(await mallory.nextBytes()).type).toBe(AudioMessageType.Reject);
    await sip.endCall({ hardHangup: true });
  });
});

// The operator's view, end to end through `wrangler dev`, with LiveKit's own server SDK:
// - a webhook receiver built on livekit-server-sdk's WebhookReceiver, fed the raw body and the
//   Authorization header unchanged, that refuses the first delivery of every event (so every event
//   that arrives proves a retry, with the same id);
// - a Viam→Voice call and a SIP call, each producing room_started, participant_joined,
//   participant_left and room_finished;
// - RoomServiceClient listing, removing and deleting live calls of two doors;
// - a join-only token and a wrong secret, refused.
import { createServer, type Server } from "node:http";
import { createClient } from "@connectrpc/connect";
import { createWritableIterable } from "@connectrpc/connect/protocol";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { AccessToken, RoomServiceClient, WebhookReceiver, type WebhookEvent } from "livekit-server-sdk";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { fromBinary } from "@bufbuild/protobuf";
import WebSocket from "ws";
import { DisconnectReason } from "../../proto/gen/livekit_models_pb";
import { SignalResponseSchema, type SignalResponse } from "../../proto/gen/livekit_rtc_pb";
import { SipStatus_StatusType as S } from "../../proto/gen/ondewo/sip/sip_pb";
import { SignalingService } from "../../proto/gen/proto/rpc/webrtc/v1/signaling_pb";
import { VoiceService, type ClientSignalSchema } from "../../proto/gen/protocol/voice/v1/voice_pb";
import { answerAsVoice, callFromViam, type ViamCaller, type VoiceAnswerer } from "./cross-door-clients";
import { baseUrl, tokenFor } from "./server";
import { registerSipAccount, sipClient, waitForSipStatus, type SipClient } from "./sip-clients";

const apiKey = inject("livekitApiKey");
const apiSecret = inject("livekitApiSecret");
const webhookPort = inject("webhookPort");

let seq = 0;
const unique = (role: string) => `${role}-ops-${Date.now().toString(36)}-${seq++}`;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---- The receiver ------------------------------------------------------------------------------

interface Received {
  event: WebhookEvent;
  /** When its first delivery came (and was refused), and when the one taken came. */
  refusedAt: number;
  takenAt: number;
  contentType: string | undefined;
}

const receiver = new WebhookReceiver(apiKey, apiSecret);
const refused = new Map<string, number>();
const received: Received[] = [];
const unverified: string[] = [];
let server: Server;

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    try {
      // As LiveKit's docs show: the raw body and the Authorization header, unmodified.
      const event = await receiver.receive(body, req.headers.authorization);
      if (!refused.has(event.id)) {
        refused.set(event.id, Date.now());
        res.writeHead(503).end("not yet");
        return;
      }
      if (!received.some((r) => r.event.id === event.id)) {
        received.push({ event, refusedAt: refused.get(event.id)!, takenAt: Date.now(), contentType: req.headers["content-type"] });
      }
      res.writeHead(200).end();
    } catch (err) {
      unverified.push(String(err));
      res.writeHead(401).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(webhookPort, "127.0.0.1", resolve));
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** The events taken for the room whose participant `identity` is, once `names` have all arrived. */
async function eventsOf(identity: string, names: string[], timeoutMs = 40_000): Promise<Received[]> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const room = received.find((r) => r.event.participant?.identity === identity)?.event.room?.name;
    const mine = room ? received.filter((r) => r.event.room?.name === room) : [];
    const have = mine.map((r) => `${r.event.event}${r.event.participant ? `:${r.event.participant.identity}` : ""}`);
    if (names.every((n) => have.includes(n))) return mine;
    if (Date.now() > until) throw new Error(`events for ${identity}: have ${have.join(", ")}; wanted ${names.join(", ")}`);
    await sleep(200);
  }
}

// ---- Door clients ------------------------------------------------------------------------------

let abort = new AbortController();
const peers: Array<ViamCaller | VoiceAnswerer> = [];
afterEach(() => {
  abort.abort();
  abort = new AbortController();
  for (const p of peers.splice(0)) p.peer.pc.close();
});

const bearer = async (sub: string) => ({ authorization: `Bearer ${await tokenFor(sub)}` });

/** A live Viam→Voice call: the Voice client answers and stays; the Viam Call stream stays open. */
async function liveViamCall({ answer = true } = {}) {
  const caller = unique("alice");
  const callee = unique("bob");
  const voice = createClient(VoiceService, createConnectTransport({ baseUrl, httpVersion: "1.1" }));
  const outbound = createWritableIterable<MessageInitShape<typeof ClientSignalSchema>>();
  const voiceStream = voice.connect(outbound, { headers: await bearer(callee), signal: abort.signal })[Symbol.asyncIterator]();
  const offered = voiceStream.next();
  const viam = createClient(SignalingService, createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }));
  const headers = { ...(await bearer(caller)), "rpc-host": callee };
  let viamStream: AsyncIterator<{ uuid: string }> | undefined;
  // The Voice stream registers a moment after it opens: until then the Call is not_found.
  for (let i = 0; ; i++) {
    viamStream = viam.call({ sdp: "v=0\r\noffer\r\n" }, { headers, signal: abort.signal })[Symbol.asyncIterator]();
    const first = viamStream.next();
    const raced = await Promise.race([offered.then(() => "offered"), first.then(() => "first", () => "failed")]);
    if (raced === "offered" && !answer) return { id: "", caller, callee, viamStream, voiceStream, outbound, first };
    if (raced === "offered") {
      await outbound.write({ event: { case: "answer", value: { answer: "v=0\r\nanswer\r\n" } } });
      const init = await first;
      return { id: (init.value as { uuid: string }).uuid, caller, callee, viamStream, voiceStream, outbound, first };
    }
    if (i > 25) throw new Error("the Voice answerer never came online");
    await sleep(200);
  }
}

/** Drains a stream; resolves with how it ended: "ok" or the error's message. */
async function endOf(stream: AsyncIterator<unknown>): Promise<string> {
  try {
    while (!(await stream.next()).done) { /* signals */ }
    return "ok";
  } catch (err) {
    return String((err as Error).message);
  }
}

async function sipAccount(who: string, autoAnswer: number): Promise<{ name: string; sip: SipClient }> {
  const name = unique(who);
  const password = `secret of ${name}`;
  await registerSipAccount(baseUrl, name, password);
  const sip = sipClient(baseUrl, name, password);
  await sip.startSession({ accountName: name, autoAnswerInterval: autoAnswer });
  return { name, sip };
}


/** Alice calls bob, who answers by himself after a second: a connected SIP call and its id. */
async function connectedSipCall() {
  const alice = await sipAccount("alice", 0);
  const bob = await sipAccount("bob", 1);
  await alice.sip.startCall({ calleeId: bob.name, headers: {} });
  const connected = await waitForSipStatus(alice.sip, S.outgoing_call_connected, 15_000);
  await waitForSipStatus(bob.sip, S.incoming_call_connected, 15_000);
  return { alice, bob, id: connected.headers["call-id"] };
}

const rooms = () => new RoomServiceClient(baseUrl, apiKey, apiSecret);

/** A LiveKit participant's signalling socket on /rtc, as livekit-client opens it: the messages it
 * gets, decoded, and its close. */
async function liveKitParticipant(room: string, identity: string) {
  const at = new AccessToken(apiKey, apiSecret, { identity });
  at.addGrant({ roomJoin: true, room });
  const url = `${baseUrl.replace(/^http/, "ws")}/rtc?access_token=${await at.toJwt()}&auto_subscribe=1&sdk=js&version=2.23.0&protocol=17`;
  const ws = new WebSocket(url);
  const messages: SignalResponse["message"][] = [];
  ws.on("message", (data: Buffer) => messages.push(fromBinary(SignalResponseSchema, new Uint8Array(data)).message));
  await new Promise<void>((resolve, reject) => { ws.once("open", () => resolve()); ws.once("error", reject); });
  /** The leave the room sent (its socket closes right after; wrangler dev's proxy takes seconds to end the TCP connection). */
  const leave = async () => {
    for (let i = 0; i < 100; i++) {
      const found = messages.find((m) => m.case === "leave");
      if (found) return found.value;
      await sleep(50);
    }
    throw new Error(`${identity} got no leave`);
  };
  return { ws, messages, leave };
}

// ---- Webhooks ------------------------------------------------------------------------------------

describe("webhooks, through the real SDK's WebhookReceiver", () => {
  it("a Viam→Voice call produces its four events, each delivered again after a refusal, with the same id", async () => {
    const caller = unique("alice");
    const callee = unique("bob");
    const voice = answerAsVoice({ baseUrl, token: await tokenFor(callee), signal: abort.signal });
    peers.push(voice);
    const viam = await callFromViam({ baseUrl, token: await tokenFor(caller), host: callee, encoding: "plain", signal: abort.signal });
    peers.push(viam);
    await viam.ended;
    await voice.ended;
    const events = await eventsOf(caller, ["room_started", `participant_joined:${caller}`, `participant_joined:${callee}`,
      `participant_left:${caller}`, `participant_left:${callee}`, "room_finished"]);
    expect(unverified).toEqual([]);
    const finished = events.find((e) => e.event.event === "room_finished")!;
    expect(finished.event.room?.name).toMatch(/^[0-9a-f-]{36}$/);
    expect(JSON.parse(finished.event.room!.metadata)).toMatchObject({ doors: { caller: "viam", callee: "voice" } });
    for (const e of events) {
      expect(e.contentType).toBe("application/webhook+json");
      expect(e.event.id).toMatch(/^EV_/);
      expect(Number(e.event.createdAt)).toBeGreaterThan(Date.now() / 1000 - 120);
      // Refused once, taken on the first retry: within 10 s (plus the queue's one-second batching).
      expect(e.takenAt - e.refusedAt).toBeLessThan(11_000);
    }
    expect(new Set(events.map((e) => e.event.id)).size).toBe(events.length);
  });

  it("a SIP call produces its four events, and ends with room_finished when a side hangs up", async () => {
    const { alice, bob } = await connectedSipCall();
    await eventsOf(alice.name, ["room_started", `participant_joined:${alice.name}`, `participant_joined:${bob.name}`]);
    await alice.sip.endCall({ hardHangup: true });
    await waitForSipStatus(bob.sip, S.incoming_call_finished, 15_000);
    const events = await eventsOf(alice.name, [`participant_left:${alice.name}`, `participant_left:${bob.name}`, "room_finished"]);
    const joined = events.find((e) => e.event.event === "participant_joined" && e.event.participant?.identity === bob.name)!;
    expect(joined.event.participant?.kind).toBe(3); // ParticipantInfo.Kind.SIP
  });

  it("a call taken but never answered aborts its caller's connection at the offer deadline (participant_connection_aborted)", async () => {
    const call = await liveViamCall({ answer: false });
    // The callee holds the offer and says nothing: the 10 s offer deadline ends the call.
    await expect(call.first).rejects.toThrow(/did not answer within the offer deadline/);
    call.outbound.close();
    const events = await eventsOf(call.caller, ["room_started", `participant_joined:${call.caller}`,
      `participant_connection_aborted:${call.caller}`, "room_finished"]);
    expect(events.find((e) => e.event.event === "participant_connection_aborted")?.event.participant?.state).toBe(3); // DISCONNECTED
  });

  it("a call to a host nobody answers for is refused with not_found (before any call object exists: test/host.test.ts)", async () => {
    const caller = unique("alice");
    const viam = createClient(SignalingService, createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }));
    const stream = viam.call({ sdp: "v=0\r\noffer\r\n" }, { headers: { ...(await bearer(caller)), "rpc-host": unique("nobody") } });
    expect(await endOf(stream[Symbol.asyncIterator]())).toMatch(/not online/);
  });
});

// ---- RoomService ---------------------------------------------------------------------------------

describe("RoomService, through the real SDK's RoomServiceClient", () => {
  it("lists live calls of two doors, with their participants", async () => {
    const viam = await liveViamCall();
    const sip = await connectedSipCall();
    const listed = await rooms().listRooms([viam.id, sip.id]);
    expect(listed.map((r) => r.name).sort()).toEqual([viam.id, sip.id].sort());
    const viamPeople = await rooms().listParticipants(viam.id);
    expect(viamPeople.map((p) => p.identity).sort()).toEqual([viam.caller, viam.callee].sort());
    const sipPeople = await rooms().listParticipants(sip.id);
    expect(sipPeople.map((p) => p.identity).sort()).toEqual([sip.alice.name, sip.bob.name].sort());
    expect((await rooms().getParticipant(sip.id, sip.bob.name)).identity).toBe(sip.bob.name);
    // Listing all rooms finds them too, once the directory has them.
    for (let i = 0; ; i++) {
      const all = (await rooms().listRooms()).map((r) => r.name);
      if (all.includes(viam.id) && all.includes(sip.id)) break;
      if (i > 50) throw new Error("the directory never listed both calls");
      await sleep(100);
    }
    await sip.alice.sip.endCall({ hardHangup: true });
    viam.outbound.close();
  });

  it("lists a LiveKit room, removes one participant with a leave, and deletes the room", async () => {
    const room = unique("lk-room");
    const [a, b] = [unique("alice"), unique("bob")];
    const alice = await liveKitParticipant(room, a);
    const bob = await liveKitParticipant(room, b);
    for (let i = 0; (await rooms().listRooms([room])).length === 0; i++) {
      if (i > 50) throw new Error("the LiveKit room was never listed");
      await sleep(100);
    }
    expect((await rooms().listParticipants(room)).map((p) => p.identity).sort()).toEqual([a, b].sort());
    await rooms().removeParticipant(room, b);
    expect(await bob.leave()).toMatchObject({ reason: DisconnectReason.PARTICIPANT_REMOVED });
    await rooms().deleteRoom(room);
    expect(await alice.leave()).toMatchObject({ reason: DisconnectReason.ROOM_DELETED });
    await expect(rooms().listParticipants(room)).rejects.toMatchObject({ code: "not_found" });
    // …and its webhooks came too, each after a refused first delivery.
    const events = await eventsOf(b, ["room_started", `participant_joined:${a}`, `participant_joined:${b}`,
      `participant_left:${b}`, "room_finished"]);
    expect(events.every((e) => e.event.room?.name === room)).toBe(true);
  });

  it("RemoveParticipant ends a Viam→Voice call on both doors", async () => {
    const call = await liveViamCall();
    const viamEnd = endOf(call.viamStream);
    const voiceEnd = endOf(call.voiceStream);
    await rooms().removeParticipant(call.id, call.callee);
    expect(await viamEnd).toMatch(/removed by an operator/);
    expect(await voiceEnd).toMatch(/removed by an operator/);
    await expect(rooms().listParticipants(call.id)).rejects.toMatchObject({ status: 404, code: "not_found" });
    call.outbound.close();
  });

  it("DeleteRoom ends a SIP call: both accounts reach *_call_finished", async () => {
    const { alice, bob, id } = await connectedSipCall();
    await rooms().deleteRoom(id);
    await waitForSipStatus(alice.sip, S.outgoing_call_finished, 15_000);
    await waitForSipStatus(bob.sip, S.incoming_call_finished, 15_000);
    expect(await rooms().listRooms([id])).toEqual([]);
  });

  it("an unknown room or participant is not_found", async () => {
    await expect(rooms().deleteRoom(crypto.randomUUID())).rejects.toMatchObject({ status: 404, code: "not_found" });
    const call = await liveViamCall();
    await expect(rooms().removeParticipant(call.id, "nobody")).rejects.toMatchObject({ code: "not_found" });
    call.outbound.close();
  });

  it("refuses a join-only token (permission_denied) and a wrong secret (unauthenticated)", async () => {
    const join = new AccessToken(apiKey, apiSecret, { identity: "someone" });
    join.addGrant({ roomJoin: true, room: "any" });
    const joinOnly = new RoomServiceClient(baseUrl, undefined, undefined, { token: await join.toJwt() });
    await expect(joinOnly.listRooms()).rejects.toMatchObject({ status: 403, code: "permission_denied" });
    const wrong = new RoomServiceClient(baseUrl, apiKey, "not-the-secret-not-the-secret-not-the-secret");
    await expect(wrong.listRooms()).rejects.toMatchObject({ status: 401, code: "unauthenticated" });
  });
});

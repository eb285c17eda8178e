// The LiveKit door (`/rtc`) through the real Worker and LiveKitRoom objects, in the Workers runtime,
// with tokens minted by livekit-server-sdk and signals encoded as livekit-client sends them.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DisconnectReason, ParticipantInfo_State, TrackSource, TrackType } from "../proto/gen/livekit_models_pb";
import {
  AddTrackRequestSchema, LeaveRequest_Action, LeaveRequestSchema, PingSchema, SessionDescriptionSchema,
  SignalRequestSchema, SignalResponseSchema, SignalTarget, TrickleRequestSchema, type SignalRequest,
  type SignalResponse,
} from "../proto/gen/livekit_rtc_pb";
import { iceServersFor } from "../model/ice-servers";
import { ANSWER, CANDIDATE, DATA_OFFER, liveKitToken, MIC_CID } from "./livekit-fixtures";

type Message = NonNullable<SignalResponse["message"]>;
type Case = NonNullable<Message["case"]>;
type ValueOf<C extends Case> = Extract<Message, { case: C }>["value"];

let rooms = 0;
const newRoom = () => `lk-room-${++rooms}-${Date.now().toString(36)}`;
/** livekit-client's query string on a first join (2.23.0). */
const CLIENT_QUERY = "auto_subscribe=1&sdk=js&version=2.23.0&protocol=17&client_protocol=2";

const get = (path: string, init: RequestInit = {}) => exports.default.fetch(`http://worker.test${path}`, init);
const upgrade = (path: string, init: RequestInit = {}) =>
  get(path, { ...init, headers: { upgrade: "websocket", ...init.headers } });

/** A signalling socket that decodes what it receives and queues it for the test to await in order. */
class SignalClient {
  private readonly inbox: Message[] = [];
  private waiting: ((message: Message) => void) | null = null;
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(readonly ws: WebSocket) {
    ws.accept();
    ws.binaryType = "arraybuffer";
    ws.addEventListener("message", (e) => {
      const message = fromBinary(SignalResponseSchema, new Uint8Array(e.data as ArrayBuffer)).message as Message;
      const wake = this.waiting;
      this.waiting = null;
      if (wake) wake(message);
      else this.inbox.push(message);
    });
    this.closed = new Promise((resolve) => ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason })));
  }

  send(message: SignalRequest["message"]): void {
    this.ws.send(toBinary(SignalRequestSchema, create(SignalRequestSchema, { message })));
  }

  next(timeoutMs = 5_000): Promise<Message> {
    const queued = this.inbox.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nothing received in ${timeoutMs} ms`)), timeoutMs);
      this.waiting = (message) => { clearTimeout(timer); resolve(message); };
    });
  }

  /** The next message, which must be of kind `kind`. */
  async expect<C extends Case>(kind: C, timeoutMs?: number): Promise<ValueOf<C>> {
    const message = await this.next(timeoutMs);
    expect(message.case).toBe(kind);
    return message.value as ValueOf<C>;
  }

  /** Proves nothing else arrived: a pong comes back only after everything sent before it. */
  async expectNothingPending(): Promise<void> {
    this.send({ case: "pingReq", value: create(PingSchema, { timestamp: 42n }) });
    expect((await this.next()).case).toBe("pongResp");
  }
}

async function connect(room: string, identity: string, query = CLIENT_QUERY): Promise<SignalClient> {
  const res = await upgrade(`/rtc?access_token=${await liveKitToken(identity, room)}&${query}`);
  expect(res.status).toBe(101);
  return new SignalClient(res.webSocket!);
}

async function join(room: string, identity: string) {
  const client = await connect(room, identity);
  return { client, join: await client.expect("join") };
}

/** A publisher offer (the data-channel offer with a long attribute line) encoded in exactly `bytes`. */
function offerFrameOfSize(bytes: number): Uint8Array {
  const frame = (pad: number) =>
    toBinary(SignalRequestSchema, create(SignalRequestSchema, { message: offer(`${DATA_OFFER}a=x-pad:${"v".repeat(pad)}\r\n`, 1) }));
  // The length prefixes grow with the SDP: step up to the exact size.
  let pad = bytes - frame(0).length - 8;
  while (frame(pad).length < bytes) pad++;
  expect(frame(pad).length).toBe(bytes);
  return frame(pad);
}

const offer = (sdp: string, id: number): SignalRequest["message"] =>
  ({ case: "offer", value: create(SessionDescriptionSchema, { type: "offer", sdp, id }) });

/** Alice joined and offered; Bob joined and got her offer. */
async function pairedRoom() {
  const room = newRoom();
  const alice = await join(room, "alice");
  alice.client.send(offer(DATA_OFFER, 1));
  await alice.client.expectNothingPending();
  const bob = await join(room, "bob");
  expect((await alice.client.expect("update")).participants[0].identity).toBe("bob");
  await bob.client.expect("update");
  await bob.client.expect("offer");
  return { room, alice, bob };
}

describe("LiveKit HTTP endpoints", () => {
  it("answers /rtc/validate with 200 success for a valid token", async () => {
    const res = await get(`/rtc/validate?access_token=${await liveKitToken("alice", newRoom())}&${CLIENT_QUERY}`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("success");
  });

  it("answers /rtc/validate with 401 and the reason for an expired token", async () => {
    const res = await get(`/rtc/validate?access_token=${await liveKitToken("alice", newRoom(), { ttl: -60 })}`);
    expect(res.status).toBe(401);
    expect(await res.text()).toContain("invalid authorization token");
  });

  it("answers /rtc/validate with 403 for a token that forbids subscribing", async () => {
    const res = await get(`/rtc/validate?access_token=${await liveKitToken("alice", newRoom(), { grant: { canSubscribe: false } })}`);
    expect(res.status).toBe(403);
  });

  it("refuses the /rtc upgrade with 401 for a token signed with another secret", async () => {
    const token = await liveKitToken("alice", newRoom(), { secret: "not-the-secret-not-the-secret-000" });
    const res = await upgrade(`/rtc?access_token=${token}&${CLIENT_QUERY}`);
    expect(res.status).toBe(401);
    expect(res.webSocket).toBeNull();
  });

  it("refuses the /rtc upgrade with 401 when there is no token", async () => {
    expect((await upgrade(`/rtc?${CLIENT_QUERY}`)).status).toBe(401);
  });

  it("accepts the token in an Authorization header too", async () => {
    const res = await upgrade(`/rtc?${CLIENT_QUERY}`, { headers: { authorization: `Bearer ${await liveKitToken("alice", newRoom())}` } });
    expect(res.status).toBe(101);
    expect((await new SignalClient(res.webSocket!).next()).case).toBe("join");
  });

  it("answers a GET /rtc without an upgrade with 426", async () => {
    expect((await get(`/rtc?access_token=${await liveKitToken("alice", newRoom())}`)).status).toBe(426);
  });

  it("refuses the /rtc/v1 upgrade with 404, so that livekit-client falls back to /rtc", async () => {
    expect((await upgrade(`/rtc/v1?access_token=${await liveKitToken("alice", newRoom())}`)).status).toBe(404);
  });

  it("answers /rtc/v1/validate with 404 and CORS headers, without saying the room is missing", async () => {
    const res = await get(`/rtc/v1/validate?access_token=${await liveKitToken("alice", newRoom())}&join_request=x`,
      { headers: { origin: "http://app.example" } });
    expect(res.status).toBe(404);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(await res.text()).not.toContain("requested room does not exist");
  });

  it("answers /rtc/v1/validate with 401 for a bad token, so that the client reports it instead of falling back", async () => {
    const res = await get(`/rtc/v1/validate?access_token=${await liveKitToken("alice", newRoom(), { ttl: -60 })}`);
    expect(res.status).toBe(401);
  });
});

describe("LiveKit /rtc sessions", () => {
  it("sends a JoinResponse as the first message, with the configured ICE servers", async () => {
    const room = newRoom();
    const { join: response } = await join(room, "alice");
    expect(response.participant).toMatchObject({ identity: "alice", sid: expect.stringMatching(/^PA_/) });
    expect(response.room).toMatchObject({ name: room, sid: expect.stringMatching(/^RM_/) });
    expect(response.serverInfo?.version).not.toBe("");
    expect(response.subscriberPrimary).toBe(false);
    expect(response.iceServers.map((s) => s.urls)).toEqual((await iceServersFor(env, "alice")).map((s) => s.urls));
  });

  it("answers ping_req with pong_resp echoing its timestamp", async () => {
    const { client } = await join(newRoom(), "alice");
    client.send({ case: "pingReq", value: create(PingSchema, { timestamp: 1234n }) });
    expect((await client.expect("pongResp")).lastPingTimestamp).toBe(1234n);
  });

  it("delivers the first participant's parked offer to the second with its id", async () => {
    const room = newRoom();
    const alice = await join(room, "alice");
    alice.client.send(offer(DATA_OFFER, 1));
    await alice.client.expectNothingPending();
    const bob = await join(room, "bob");
    expect(bob.join.otherParticipants.map((p) => p.identity)).toEqual(["alice"]);
    expect((await bob.client.expect("update")).participants[0].sid).toBe(alice.join.participant?.sid);
    expect(await bob.client.expect("offer")).toMatchObject({ sdp: DATA_OFFER, id: 1 });
  });

  it("relays the subscriber's answer to the publisher with the offer's id", async () => {
    const { alice, bob } = await pairedRoom();
    bob.client.send({ case: "answer", value: create(SessionDescriptionSchema, { type: "answer", sdp: ANSWER, id: 1 }) });
    expect(await alice.client.expect("answer")).toMatchObject({ sdp: ANSWER, id: 1 });
  });

  it("relays a publisher candidate to the peer with the target flipped to SUBSCRIBER", async () => {
    const { alice, bob } = await pairedRoom();
    alice.client.send({ case: "trickle", value: create(TrickleRequestSchema, { candidateInit: CANDIDATE, target: SignalTarget.PUBLISHER }) });
    expect(await bob.client.expect("trickle")).toMatchObject({ candidateInit: CANDIDATE, target: SignalTarget.SUBSCRIBER });
  });

  it("answers add_track with track_published for the cid", async () => {
    const { alice } = await pairedRoom();
    alice.client.send({ case: "addTrack", value: create(AddTrackRequestSchema, { cid: MIC_CID, name: "microphone", type: TrackType.AUDIO, source: TrackSource.MICROPHONE }) });
    const published = await alice.client.expect("trackPublished");
    expect(published).toMatchObject({ cid: MIC_CID, track: { sid: expect.stringMatching(/^TR_/), source: TrackSource.MICROPHONE } });
  });

  it("refuses a third participant with leave JOIN_FAILURE as its first message", async () => {
    const { room } = await pairedRoom();
    const carol = await connect(room, "carol");
    expect(await carol.expect("leave")).toMatchObject({ reason: DisconnectReason.JOIN_FAILURE, action: LeaveRequest_Action.DISCONNECT });
    await carol.closed;
  });

  it("tells the other participant when one leaves", async () => {
    const { alice, bob } = await pairedRoom();
    bob.client.send({ case: "leave", value: create(LeaveRequestSchema, { reason: DisconnectReason.CLIENT_INITIATED }) });
    const update = await alice.client.expect("update");
    expect(update.participants[0]).toMatchObject({ identity: "bob", state: ParticipantInfo_State.DISCONNECTED, disconnectReason: DisconnectReason.CLIENT_INITIATED });
  });

  it("answers a resume with a ReconnectResponse as the first message", async () => {
    const { room, bob } = await pairedRoom();
    bob.client.ws.close(1000);
    const resumed = await connect(room, "bob", `${CLIENT_QUERY}&reconnect=1&sid=${bob.join.participant!.sid}`);
    expect((await resumed.next()).case).toBe("reconnect");
  });

  it("answers a resume of an unknown session with leave RECONNECT", async () => {
    const resumed = await connect(newRoom(), "bob", `${CLIENT_QUERY}&reconnect=1&sid=PA_unknown`);
    expect((await resumed.expect("leave")).action).toBe(LeaveRequest_Action.RECONNECT);
  });

  it("keeps relaying between two participants after the room object was evicted", async () => {
    const { room, alice, bob } = await pairedRoom();
    await evictDurableObject(env.LIVEKIT_ROOMS.getByName(room));
    bob.client.send(offer(DATA_OFFER, 1));
    await alice.client.expect("update");
    expect((await alice.client.expect("offer")).id).toBe(1);
  });

  it("gives the sessions of sockets lost with the object the resume window", async () => {
    const { room } = await pairedRoom();
    const stub = env.LIVEKIT_ROOMS.getByName(room);
    // No deadline while both are in: the alarm clears once the join's operator events are sent.
    await expect.poll(() => runInDurableObject(stub, (_, state) => state.storage.getAlarm()), { timeout: 2_000 }).toBeNull();
    await evictDurableObject(stub, { webSockets: "close" });
    const resumed = await connect(room, "alice", `${CLIENT_QUERY}&reconnect=1&sid=PA_unknown`);
    await resumed.expect("leave");
    expect(await runInDurableObject(stub, (_, state) => state.storage.getAlarm())).toBeGreaterThan(Date.now());
  });

  it("sends a participant still alone leave JOIN_FAILURE when its 12 s wait ends", async () => {
    const joined = Date.now();
    const { client } = await join(newRoom(), "alice");
    const leave = await client.expect("leave", 12_000 + 5_000);
    expect(Date.now() - joined).toBeGreaterThanOrEqual(12_000);
    expect(leave).toMatchObject({ reason: DisconnectReason.JOIN_FAILURE, action: LeaveRequest_Action.DISCONNECT });
  });
});

describe("LiveKit protocol errors", () => {
  it("closes a socket that sends a text frame with 1003", async () => {
    const { client } = await join(newRoom(), "alice");
    client.ws.send("{\"ping\":1}");
    expect((await client.closed).code).toBe(1003);
  });

  it("closes a socket that sends bytes that are no SignalRequest with 1007", async () => {
    const { client } = await join(newRoom(), "alice");
    client.ws.send(new Uint8Array([0xff, 0xff, 0xff]));
    expect((await client.closed).code).toBe(1007);
  });

  it("closes a socket that sends a 65 537-byte (64 KiB + 1) frame with 1009", async () => {
    const { client } = await join(newRoom(), "alice");
    client.ws.send(offerFrameOfSize(65_537));
    expect((await client.closed).code).toBe(1009);
  });

  it("takes a frame of exactly 65 536 bytes (64 KiB): the socket stays open and answers a ping", async () => {
    const { client } = await join(newRoom(), "alice");
    client.ws.send(offerFrameOfSize(65_536));
    await client.expectNothingPending();
  });
});

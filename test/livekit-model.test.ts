// The rules of a peer-to-peer LiveKit room as a pure function: joins, parking, pairing, relay,
// tracks, leaves, restarts and resumes, without sockets or clocks.
import { create } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  emptyRoom, nextDeadline, NORMAL_CLOSURE, POLICY_VIOLATION, SERVER_VERSION, step, type RoomEffect, type RoomEvent,
  type RoomState,
} from "../model/livekit-model";
import {
  DisconnectReason, ParticipantInfo_State, TrackSource, TrackType, type ParticipantInfo,
} from "../proto/gen/livekit_models_pb";
import {
  AddTrackRequestSchema, LeaveRequest_Action, LeaveRequestSchema, MuteTrackRequestSchema, PingSchema,
  PublishDataTrackRequestSchema, RequestResponse_Reason, SessionDescriptionSchema, SignalTarget, TrickleRequestSchema,
  UpdateParticipantMetadataSchema, type SignalRequest, type SignalResponse,
} from "../proto/gen/livekit_rtc_pb";
import type { LiveKitGrant } from "../model/livekit-grant";
import {
  LIVEKIT_MAX_PARKED_CANDIDATES, LIVEKIT_PEER_WAIT_MS, LIVEKIT_PING_INTERVAL_S, LIVEKIT_PING_TIMEOUT_S,
  LIVEKIT_RESTART_SETTLE_MS, LIVEKIT_RESUME_WINDOW_MS,
} from "../model/limits";
import { ANSWER, CANDIDATE, DATA_OFFER, grantFor, MIC_CID, micOffer } from "./livekit-fixtures";

const ICE = [{ urls: ["stun:stun.example.com:3478"] }];
const T0 = 1_700_000_000_000;

type Message = NonNullable<SignalResponse["message"]>;
type Case = NonNullable<Message["case"]>;
type ValueOf<C extends Case> = Extract<Message, { case: C }>["value"];

/** Drives `step` like the room object does, keeping the state and the effects of the last event. */
class Room {
  state: RoomState = emptyRoom();
  effects: RoomEffect[] = [];
  now = T0;
  private ids = 0;

  apply(event: RoomEvent): RoomEffect[] {
    const before = structuredClone(this.state);
    const t = step(this.state, event);
    expect(this.state).toEqual(before); // step never modifies its input
    this.state = t.state;
    this.effects = t.effects;
    return t.effects;
  }

  join(connection: string, grant: LiveKitGrant | string): RoomEffect[] {
    const g = typeof grant === "string" ? grantFor(grant) : grant;
    return this.apply({ type: "join", connection, now: this.now, grant: g, clientProtocol: 2, iceServers: ICE,
      freshSid: `PA_${g.identity}${++this.ids}`, freshRoomSid: `RM_${++this.ids}` });
  }

  resume(connection: string, identity: string, sid: string): RoomEffect[] {
    return this.apply({ type: "resume", connection, now: this.now, identity, sid, iceServers: ICE });
  }

  send(connection: string, request: SignalRequest["message"]): RoomEffect[] {
    return this.apply({ type: "request", connection, now: this.now, request, freshTrackSid: `TR_${++this.ids}` });
  }

  closed(connection: string): RoomEffect[] {
    return this.apply({ type: "closed", connection, now: this.now });
  }

  tick(at: number): RoomEffect[] {
    this.now = at;
    return this.apply({ type: "tick", now: at });
  }

  session(identity: string) {
    return this.state.sessions.find((s) => s.identity === identity);
  }

  /** The messages the last event sent to `connection`, in order. */
  to(connection: string): Message[] {
    return this.effects.flatMap((e) => (e.type === "send" && e.connection === connection && e.message.case ? [e.message] : []));
  }

  first<C extends Case>(connection: string, kind: C): ValueOf<C> {
    const message = this.to(connection).find((m) => m.case === kind);
    if (!message) throw new Error(`no ${kind} to ${connection}; got ${this.to(connection).map((m) => m.case).join(", ")}`);
    return message.value as ValueOf<C>;
  }

  cases(connection: string): string[] {
    return this.to(connection).map((m) => m.case as string);
  }

  closes(connection: string) {
    return this.effects.filter((e) => e.type === "close" && e.connection === connection);
  }
}

const offer = (sdp: string, id: number): SignalRequest["message"] =>
  ({ case: "offer", value: create(SessionDescriptionSchema, { type: "offer", sdp, id }) });
const answer = (sdp: string, id: number): SignalRequest["message"] =>
  ({ case: "answer", value: create(SessionDescriptionSchema, { type: "answer", sdp, id }) });
const trickle = (target: SignalTarget, candidateInit = CANDIDATE): SignalRequest["message"] =>
  ({ case: "trickle", value: create(TrickleRequestSchema, { candidateInit, target }) });
const addMic = (cid = MIC_CID): SignalRequest["message"] =>
  ({ case: "addTrack", value: create(AddTrackRequestSchema, { cid, name: "microphone", type: TrackType.AUDIO, source: TrackSource.MICROPHONE }) });
const leave = (): SignalRequest["message"] =>
  ({ case: "leave", value: create(LeaveRequestSchema, { reason: DisconnectReason.CLIENT_INITIATED }) });
const pingReq = (timestamp: bigint): SignalRequest["message"] => ({ case: "pingReq", value: create(PingSchema, { timestamp }) });

/** Alice alone with her first offer parked, then Bob: the two paired. */
function pairedRoom(): Room {
  const room = new Room();
  room.join("a1", "alice");
  room.send("a1", offer(DATA_OFFER, 1));
  room.join("b1", "bob");
  return room;
}

/** Alice paired with Bob and publishing her microphone (offer 2, answered). */
function publishingRoom(): Room {
  const room = pairedRoom();
  room.send("b1", answer(ANSWER, 1));
  room.send("a1", addMic());
  room.send("a1", offer(micOffer(), 2));
  return room;
}

describe("livekit room: joining", () => {
  it("answers a join with a JoinResponse naming the participant, its room and the ICE servers", () => {
    const room = new Room();
    room.join("a1", grantFor("alice", "room-1", { name: "Alice", metadata: "{\"a\":1}", attributes: { k: "v" } }));
    const join = room.first("a1", "join");
    expect(join.participant).toMatchObject({ sid: "PA_alice1", identity: "alice", name: "Alice", metadata: "{\"a\":1}",
      attributes: { k: "v" }, state: ParticipantInfo_State.JOINED, clientProtocol: 2 });
    expect(join.room).toMatchObject({ sid: "RM_2", name: "room-1", maxParticipants: 2 });
    expect(join.iceServers.map((s) => s.urls)).toEqual([["stun:stun.example.com:3478"]]);
  });

  it("makes the JoinResponse the first message and asks for publisher-primary mode", () => {
    const room = new Room();
    room.join("a1", "alice");
    expect(room.cases("a1")).toEqual(["join"]);
    expect(room.first("a1", "join").subscriberPrimary).toBe(false);
  });

  it("tells the client livekit-server's ping interval and timeout", () => {
    const room = new Room();
    room.join("a1", "alice");
    const join = room.first("a1", "join");
    expect([join.pingInterval, join.pingTimeout]).toEqual([LIVEKIT_PING_INTERVAL_S, LIVEKIT_PING_TIMEOUT_S]);
  });

  it("reports a server version from which livekit-client allows RPC", () => {
    const room = new Room();
    room.join("a1", "alice");
    const join = room.first("a1", "join");
    expect(join.serverInfo?.version).toBe(SERVER_VERSION);
    expect(SERVER_VERSION.split(".").map(Number)).toSatisfy(([major, minor]: number[]) => major > 1 || minor >= 8);
  });

  it("lists the participant already there in the newcomer's JoinResponse", () => {
    const room = new Room();
    room.join("a1", "alice");
    room.join("b1", "bob");
    expect(room.first("b1", "join").otherParticipants).toMatchObject([{ identity: "alice", state: ParticipantInfo_State.ACTIVE }]);
  });

  it("tells the participant already there about the newcomer", () => {
    const room = new Room();
    room.join("a1", "alice");
    room.join("b1", "bob");
    expect(room.first("a1", "update").participants).toMatchObject([{ identity: "bob", sid: room.session("bob")!.sid }]);
  });

  it("refuses a third participant with leave JOIN_FAILURE as its first message, then closes it", () => {
    const room = pairedRoom();
    room.join("c1", "carol");
    expect(room.cases("c1")).toEqual(["leave"]);
    expect(room.first("c1", "leave")).toMatchObject({ reason: DisconnectReason.JOIN_FAILURE, action: LeaveRequest_Action.DISCONNECT });
    expect(room.closes("c1")).toHaveLength(1);
    expect(room.state.sessions.map((s) => s.identity)).toEqual(["alice", "bob"]);
  });

  it("keeps the sid when the same identity joins again", () => {
    const room = new Room();
    room.join("a1", "alice");
    const sid = room.session("alice")!.sid;
    room.join("a2", "alice");
    expect(room.first("a2", "join").participant?.sid).toBe(sid);
  });

  it("tells an older live socket of the same identity DUPLICATE_IDENTITY and closes it", () => {
    const room = new Room();
    room.join("a1", "alice");
    room.join("a2", "alice");
    expect(room.first("a1", "leave").reason).toBe(DisconnectReason.DUPLICATE_IDENTITY);
    expect(room.closes("a1")).toMatchObject([{ code: POLICY_VIOLATION }]);
  });

  it("ignores requests from a socket replaced by a newer one", () => {
    const room = new Room();
    room.join("a1", "alice");
    room.join("a2", "alice");
    expect(room.send("a1", { case: "ping", value: 1n })).toEqual([]);
  });
});

describe("livekit room: waiting for a peer and pairing", () => {
  it("parks a lone participant's offer and candidates without answering them", () => {
    const room = new Room();
    room.join("a1", "alice");
    expect(room.send("a1", offer(DATA_OFFER, 1))).toEqual([]);
    expect(room.send("a1", trickle(SignalTarget.PUBLISHER))).toEqual([]);
    expect(room.session("alice")).toMatchObject({ offer: { id: 1, answered: false }, candidates: [CANDIDATE] });
  });

  it("keeps at most LIVEKIT_MAX_PARKED_CANDIDATES candidates for a lone participant", () => {
    const room = new Room();
    room.join("a1", "alice");
    for (let i = 0; i <= LIVEKIT_MAX_PARKED_CANDIDATES; i++) room.send("a1", trickle(SignalTarget.PUBLISHER, `c${i}`));
    expect(room.session("alice")!.candidates).toHaveLength(LIVEKIT_MAX_PARKED_CANDIDATES);
  });

  it("delivers the parked offer to the second participant with its id, after an update naming the publisher", () => {
    const room = pairedRoom();
    expect(room.cases("b1")).toEqual(["join", "update", "offer"]);
    expect(room.first("b1", "update").participants[0].sid).toBe(room.session("alice")!.sid);
    expect(room.first("b1", "offer")).toMatchObject({ type: "offer", sdp: DATA_OFFER, id: 1 });
  });

  it("delivers parked publisher candidates to the second participant as SUBSCRIBER candidates", () => {
    const room = new Room();
    room.join("a1", "alice");
    room.send("a1", offer(DATA_OFFER, 1));
    room.send("a1", trickle(SignalTarget.PUBLISHER));
    room.join("b1", "bob");
    expect(room.first("b1", "trickle")).toMatchObject({ candidateInit: CANDIDATE, target: SignalTarget.SUBSCRIBER });
    expect(room.session("alice")!.candidates).toEqual([]);
  });

  it("relays the second participant's offer to the first after an update naming it", () => {
    const room = pairedRoom();
    room.send("b1", offer(DATA_OFFER, 1));
    expect(room.cases("a1")).toEqual(["update", "offer"]);
    expect(room.first("a1", "update").participants[0].identity).toBe("bob");
    expect(room.first("a1", "offer").id).toBe(1);
  });

  it("relays a subscriber's answer to the offering publisher with the same id", () => {
    const room = pairedRoom();
    room.send("b1", answer(ANSWER, 1));
    expect(room.first("a1", "answer")).toMatchObject({ type: "answer", sdp: ANSWER, id: 1 });
    expect(room.session("alice")!.offer?.answered).toBe(true);
  });

  it("forwards a publisher candidate to the peer as a SUBSCRIBER candidate", () => {
    const room = pairedRoom();
    room.send("a1", trickle(SignalTarget.PUBLISHER));
    expect(room.first("b1", "trickle")).toMatchObject({ candidateInit: CANDIDATE, target: SignalTarget.SUBSCRIBER });
  });

  it("forwards a subscriber candidate to the peer as a PUBLISHER candidate", () => {
    const room = pairedRoom();
    room.send("b1", trickle(SignalTarget.SUBSCRIBER));
    expect(room.first("a1", "trickle")).toMatchObject({ candidateInit: CANDIDATE, target: SignalTarget.PUBLISHER });
  });

  it("schedules a lone participant's deadline LIVEKIT_PEER_WAIT_MS after its join", () => {
    const room = new Room();
    room.join("a1", "alice");
    expect(nextDeadline(room.state)).toBe(T0 + LIVEKIT_PEER_WAIT_MS);
  });

  it("sends leave JOIN_FAILURE to a participant still alone when its wait ends, and removes it", () => {
    const room = new Room();
    room.join("a1", "alice");
    room.tick(T0 + LIVEKIT_PEER_WAIT_MS);
    expect(room.first("a1", "leave")).toMatchObject({ reason: DisconnectReason.JOIN_FAILURE, action: LeaveRequest_Action.DISCONNECT });
    expect(room.closes("a1")).toMatchObject([{ code: NORMAL_CLOSURE }]);
    expect(room.state).toEqual(emptyRoom("room-1"));
  });

  it("lets a participant wait until its deadline", () => {
    const room = new Room();
    room.join("a1", "alice");
    expect(room.tick(T0 + LIVEKIT_PEER_WAIT_MS - 1)).toEqual([]);
  });

  it("clears the wait deadline once two participants are paired", () => {
    expect(nextDeadline(pairedRoom().state)).toBeUndefined();
  });
});

describe("livekit room: tracks", () => {
  it("answers add_track with track_published carrying the cid and a TR_ sid", () => {
    const room = pairedRoom();
    room.send("a1", addMic());
    const published = room.first("a1", "trackPublished");
    expect(published.cid).toBe(MIC_CID);
    expect(published.track).toMatchObject({ sid: expect.stringMatching(/^TR_/), type: TrackType.AUDIO, source: TrackSource.MICROPHONE, name: "microphone" });
  });

  it("answers a repeated add_track for the same cid with the same track sid", () => {
    const room = pairedRoom();
    room.send("a1", addMic());
    const sid = room.first("a1", "trackPublished").track?.sid;
    room.send("a1", addMic());
    expect(room.first("a1", "trackPublished").track?.sid).toBe(sid);
  });

  it("rewrites the relayed offer's msid to the publisher's sid and the track sid", () => {
    const room = publishingRoom();
    const { sid } = room.session("alice")!;
    const trackSid = room.session("alice")!.tracks[0].sid;
    const relayed = room.first("b1", "offer");
    expect(relayed.sdp).toContain(`a=msid:${sid}|${trackSid} ${trackSid}`);
    expect(relayed.midToTrackId).toEqual({ 1: trackSid });
  });

  it("names the new track in the update sent before the offer that carries it", () => {
    const room = publishingRoom();
    expect(room.cases("b1")).toEqual(["update", "offer"]);
    expect(room.first("b1", "update").participants[0].tracks).toMatchObject([{ sid: room.session("alice")!.tracks[0].sid, mimeType: "audio/opus" }]);
  });

  it("drops a track from the participant's info once an offer no longer sends it", () => {
    const room = publishingRoom();
    room.send("b1", answer(ANSWER, 2));
    room.send("a1", offer(micOffer(MIC_CID, "inactive"), 3));
    expect(room.first("b1", "update").participants[0].tracks).toEqual([]);
  });

  it("keeps a track published but not yet in any offer", () => {
    const room = pairedRoom();
    room.send("a1", addMic());
    room.send("a1", offer(DATA_OFFER, 2));
    expect(room.session("alice")!.tracks).toHaveLength(1);
  });

  it("sends the publisher track_subscribed when the peer answers the offer carrying the track", () => {
    const room = publishingRoom();
    room.send("b1", answer(ANSWER, 2));
    expect(room.first("a1", "trackSubscribed").trackSid).toBe(room.session("alice")!.tracks[0].sid);
  });

  it("refuses add_track from a participant without canPublish with request_response NOT_ALLOWED", () => {
    const room = new Room();
    room.join("a1", grantFor("alice", "room-1", { canPublish: false }));
    room.send("a1", addMic());
    expect(room.first("a1", "requestResponse")).toMatchObject({ reason: RequestResponse_Reason.NOT_ALLOWED, request: { case: "addTrack" } });
    expect(room.session("alice")!.tracks).toEqual([]);
  });

  it("refuses add_track of a source outside canPublishSources", () => {
    const room = new Room();
    room.join("a1", grantFor("alice", "room-1", { canPublishSources: [TrackSource.CAMERA] }));
    room.send("a1", addMic());
    expect(room.first("a1", "requestResponse").reason).toBe(RequestResponse_Reason.NOT_ALLOWED);
  });

  it("tells both participants about a mute with a higher version", () => {
    const room = publishingRoom();
    const { version } = room.session("alice")!;
    room.send("a1", { case: "mute", value: create(MuteTrackRequestSchema, { sid: room.session("alice")!.tracks[0].sid, muted: true }) });
    for (const connection of ["a1", "b1"]) {
      const info = room.first(connection, "update").participants[0];
      expect(info.tracks[0].muted).toBe(true);
      expect(info.version).toBeGreaterThan(version);
    }
  });

  it("answers a data track publish with UNSUPPORTED_TYPE", () => {
    const room = pairedRoom();
    room.send("a1", { case: "publishDataTrackRequest", value: create(PublishDataTrackRequestSchema, { pubHandle: 1, name: "t" }) });
    expect(room.first("a1", "requestResponse")).toMatchObject({ reason: RequestResponse_Reason.UNSUPPORTED_TYPE, request: { case: "publishDataTrack" } });
  });
});

describe("livekit room: metadata", () => {
  const update: SignalRequest["message"] = {
    case: "updateMetadata",
    value: create(UpdateParticipantMetadataSchema, { metadata: "m", name: "Al", attributes: { k: "v" }, requestId: 7 }),
  };

  it("refuses update_metadata without canUpdateOwnMetadata, naming the request id", () => {
    const room = pairedRoom();
    room.send("a1", update);
    expect(room.first("a1", "requestResponse")).toMatchObject({ requestId: 7, reason: RequestResponse_Reason.NOT_ALLOWED });
  });

  it("applies update_metadata with canUpdateOwnMetadata and tells both participants", () => {
    const room = new Room();
    room.join("a1", grantFor("alice", "room-1", { canUpdateOwnMetadata: true }));
    room.join("b1", "bob");
    room.send("a1", update);
    for (const connection of ["a1", "b1"]) {
      expect(room.first(connection, "update").participants[0]).toMatchObject({ name: "Al", metadata: "m", attributes: { k: "v" } });
    }
  });
});

describe("livekit room: ping", () => {
  it("answers ping_req with pong_resp echoing its timestamp", () => {
    const room = new Room();
    room.join("a1", "alice");
    room.send("a1", pingReq(123n));
    expect(room.first("a1", "pongResp")).toMatchObject({ lastPingTimestamp: 123n, timestamp: BigInt(T0) });
  });

  it("answers the legacy ping with pong carrying the time", () => {
    const room = new Room();
    room.join("a1", "alice");
    room.send("a1", { case: "ping", value: 5n });
    expect(room.first("a1", "pong")).toBe(BigInt(T0));
  });

  it("changes no state for a ping", () => {
    const room = pairedRoom();
    const before = room.state;
    room.send("a1", pingReq(1n));
    expect(room.state).toEqual(before);
  });
});

describe("livekit room: leaving and restarting", () => {
  it("tells the peer a participant left, with state DISCONNECTED and CLIENT_INITIATED", () => {
    const room = pairedRoom();
    room.send("b1", leave());
    const info = room.first("a1", "update").participants[0] as ParticipantInfo;
    expect(info).toMatchObject({ identity: "bob", state: ParticipantInfo_State.DISCONNECTED, disconnectReason: DisconnectReason.CLIENT_INITIATED });
    expect(room.closes("b1")).toHaveLength(1);
    expect(room.session("bob")).toBeUndefined();
  });

  it("leaves the remaining participant connected when its peer leaves", () => {
    const room = pairedRoom();
    room.send("b1", leave());
    expect(room.to("a1").some((m) => m.case === "leave")).toBe(false);
  });

  it("asks a participant whose peer left to rejoin with leave RECONNECT when someone new joins", () => {
    const room = pairedRoom();
    room.send("b1", leave());
    room.join("c1", "carol");
    expect(room.cases("a1")).toEqual(["leave"]);
    expect(room.first("a1", "leave").action).toBe(LeaveRequest_Action.RECONNECT);
  });

  it("ignores the leave that opens a restart the room asked for", () => {
    const room = pairedRoom();
    room.send("b1", leave());
    room.join("c1", "carol");
    expect(room.send("a1", leave())).toEqual([]);
    expect(room.session("alice")?.restarting).toBe(true);
  });

  it("leaves a participant asked to rejoin out of the newcomer's JoinResponse", () => {
    const room = pairedRoom();
    room.send("b1", leave());
    room.join("c1", "carol");
    expect(room.first("c1", "join").otherParticipants).toEqual([]);
  });

  it("pairs the rejoined participant with the newcomer LIVEKIT_RESTART_SETTLE_MS after its join", () => {
    const room = pairedRoom();
    room.send("b1", leave());
    room.join("c1", "carol");
    room.send("c1", offer(DATA_OFFER, 1));
    room.send("a1", leave());
    room.closed("a1");
    room.join("a2", "alice");
    expect(room.cases("a2")).toEqual(["join"]);
    expect(room.first("c1", "update").participants[0].identity).toBe("alice");
    expect(nextDeadline(room.state)).toBe(T0 + LIVEKIT_RESTART_SETTLE_MS);
    room.tick(T0 + LIVEKIT_RESTART_SETTLE_MS);
    expect(room.cases("a2")).toEqual(["update", "offer"]);
    expect(room.session("alice")!.peerEpoch).toBe(room.session("carol")!.epoch);
  });

  it("counts a join soon after the same identity left as a rejoin that must settle", () => {
    const room = pairedRoom();
    room.send("b1", leave());
    room.now = T0 + 1_000;
    room.join("b2", "bob");
    expect(room.session("bob")!.settleUntil).toBe(T0 + 1_000 + LIVEKIT_RESTART_SETTLE_MS);
  });

  it("counts a join later than the resume window after the same identity left as a fresh join", () => {
    const room = pairedRoom();
    room.send("b1", leave());
    room.now = T0 + LIVEKIT_RESUME_WINDOW_MS;
    room.join("b2", "bob");
    expect(room.session("bob")!.settleUntil).toBeUndefined();
  });

  it("asks the peer of a participant that rejoined with new connections to rejoin too", () => {
    const room = pairedRoom();
    room.send("b1", leave());
    room.closed("b1");
    room.join("b2", "bob");
    expect(room.first("a1", "leave").action).toBe(LeaveRequest_Action.RECONNECT);
  });

  it("keeps a participant whose socket closed until the resume window ends", () => {
    const room = pairedRoom();
    room.closed("b1");
    expect(room.tick(T0 + LIVEKIT_RESUME_WINDOW_MS - 1)).toEqual([]);
    room.tick(T0 + LIVEKIT_RESUME_WINDOW_MS);
    expect(room.first("a1", "update").participants[0]).toMatchObject({ identity: "bob", state: ParticipantInfo_State.DISCONNECTED, disconnectReason: DisconnectReason.SIGNAL_CLOSE });
  });
});

describe("livekit room: resuming", () => {
  it("answers a resume with a ReconnectResponse as the first message", () => {
    const room = pairedRoom();
    room.closed("b1");
    room.resume("b2", "bob", room.session("bob")!.sid);
    expect(room.cases("b2")[0]).toBe("reconnect");
    expect(room.first("b2", "reconnect").iceServers.map((s) => s.urls)).toEqual([["stun:stun.example.com:3478"]]);
    expect(nextDeadline(room.state)).toBeUndefined();
  });

  it("relays the ICE restart offer that follows a resume to the peer", () => {
    const room = pairedRoom();
    room.closed("b1");
    room.resume("b2", "bob", room.session("bob")!.sid);
    room.send("b2", offer(DATA_OFFER.replace("mHa9", "xYz1"), 2));
    expect(room.first("a1", "offer")).toMatchObject({ id: 2 });
  });

  it("redelivers on resume the peer's offer that could not reach the closed socket", () => {
    const room = pairedRoom();
    room.send("b1", answer(ANSWER, 1));
    room.closed("b1");
    room.send("a1", addMic());
    room.send("a1", offer(micOffer(), 2));
    room.resume("b2", "bob", room.session("bob")!.sid);
    expect(room.cases("b2")).toEqual(["reconnect", "update", "offer"]);
  });

  it("answers a resume of an unknown session with leave RECONNECT STATE_MISMATCH and closes", () => {
    const room = new Room();
    room.resume("x1", "alice", "PA_gone");
    expect(room.cases("x1")).toEqual(["leave"]);
    expect(room.first("x1", "leave")).toMatchObject({ action: LeaveRequest_Action.RECONNECT, reason: DisconnectReason.STATE_MISMATCH });
    expect(room.closes("x1")).toHaveLength(1);
  });

  it("answers a resume whose peer is gone with leave RECONNECT", () => {
    const room = pairedRoom();
    room.closed("a1");
    room.send("b1", leave());
    room.resume("a2", "alice", room.session("alice")!.sid);
    expect(room.first("a2", "leave").action).toBe(LeaveRequest_Action.RECONNECT);
  });
});

describe("livekit room: invariants", () => {
  const identities = ["alice", "bob", "carol"];
  const event = fc.oneof(
    fc.record({ kind: fc.constant("join"), who: fc.constantFrom(...identities) }),
    fc.record({ kind: fc.constant("resume"), who: fc.constantFrom(...identities) }),
    fc.record({ kind: fc.constantFrom("offer", "answer", "trickle", "addTrack", "leave", "closed"), who: fc.constantFrom(...identities) }),
    fc.record({ kind: fc.constant("tick"), after: fc.integer({ min: 0, max: 30_000 }) }),
  );

  /** Runs a random script; the latest socket of each identity speaks for it. */
  function run(script: Array<{ kind: string; who?: string; after?: number }>) {
    const room = new Room();
    const sockets = new Map<string, string>();
    const opened = new Set<string>();
    let n = 0;
    const check = () => {
      expect(room.state.sessions.length).toBeLessThanOrEqual(2);
      for (const effect of room.effects) expect(opened.has(effect.connection)).toBe(true);
      for (const s of room.state.sessions) {
        const peer = room.state.sessions.find((p) => p.epoch === s.peerEpoch);
        if (peer && !peer.restarting && !s.restarting) expect(peer.peerEpoch).toBe(s.epoch);
      }
    };
    for (const e of script) {
      const connection = e.who ? sockets.get(e.who) : undefined;
      if (e.kind === "join" || e.kind === "resume") {
        const fresh = `${e.who}-${++n}`;
        opened.add(fresh);
        sockets.set(e.who!, fresh);
        if (e.kind === "join") room.join(fresh, e.who!);
        else room.resume(fresh, e.who!, room.session(e.who!)?.sid ?? "PA_none");
      } else if (e.kind === "tick") {
        room.tick(room.now + e.after!);
      } else if (connection) {
        if (e.kind === "closed") room.closed(connection);
        else if (e.kind === "offer") room.send(connection, offer(micOffer(), n++));
        else if (e.kind === "answer") room.send(connection, answer(ANSWER, n));
        else if (e.kind === "trickle") room.send(connection, trickle(SignalTarget.PUBLISHER));
        else if (e.kind === "addTrack") room.send(connection, addMic());
        else room.send(connection, leave());
      }
      check();
    }
  }

  it("never holds more than two participants, addresses only opened sockets and pairs symmetrically", () => {
    fc.assert(fc.property(fc.array(event, { maxLength: 40 }), (script) => run(script)), { numRuns: 300 });
  });
});

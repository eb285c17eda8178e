// The rules of a peer-to-peer LiveKit room as a pure function (model/livekit-model.ts): joins,
// metadata, ping, leaves, restarts and resumes, and invariants over random scripts. Pairing and
// tracks have their own files (livekit-pairing.test.ts, livekit-tracks.test.ts).
import { create } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { nextDeadline, SERVER_VERSION } from "../model/livekit-model";
import { POLICY_VIOLATION } from "../model/close-codes";
import { DisconnectReason, ParticipantInfo_State, type ParticipantInfo } from "../proto/gen/livekit_models_pb";
import {
  LeaveRequest_Action, RequestResponse_Reason, SignalTarget, UpdateParticipantMetadataSchema, type SignalRequest,
} from "../proto/gen/livekit_rtc_pb";
import { ANSWER, DATA_OFFER, grantFor, micOffer } from "./livekit-fixtures";
import { addMic, answer, leave, offer, pairedRoom, pingReq, Room, T0, trickle } from "./livekit-room-driver";

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

  it("tells the client livekit-server's ping interval and timeout: 5 s and 15 s", () => {
    const room = new Room();
    room.join("a1", "alice");
    const join = room.first("a1", "join");
    expect([join.pingInterval, join.pingTimeout]).toEqual([5, 15]);
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

  it("pairs the rejoined participant with the newcomer 2 s after its join", () => {
    const room = pairedRoom();
    room.send("b1", leave());
    room.join("c1", "carol");
    room.send("c1", offer(DATA_OFFER, 1));
    room.send("a1", leave());
    room.closed("a1");
    room.join("a2", "alice");
    expect(room.cases("a2")).toEqual(["join"]);
    expect(room.first("c1", "update").participants[0].identity).toBe("alice");
    expect(nextDeadline(room.state)).toBe(T0 + 2_000);
    room.tick(T0 + 2_000);
    expect(room.cases("a2")).toEqual(["update", "offer"]);
    expect(room.session("alice")!.peerEpoch).toBe(room.session("carol")!.epoch);
  });

  it("counts a join soon after the same identity left as a rejoin that must settle", () => {
    const room = pairedRoom();
    room.send("b1", leave());
    room.now = T0 + 1_000;
    room.join("b2", "bob");
    expect(room.session("bob")!.settleUntil).toBe(T0 + 1_000 + 2_000);
  });

  it("counts a join 20 s (the resume window) after the same identity left as a fresh join", () => {
    const room = pairedRoom();
    room.send("b1", leave());
    room.now = T0 + 20_000;
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

  it("keeps a participant whose socket closed until the 20 s resume window ends", () => {
    const room = pairedRoom();
    room.closed("b1");
    expect(room.tick(T0 + 20_000 - 1)).toEqual([]);
    room.tick(T0 + 20_000);
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

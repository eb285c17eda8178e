// Pairing in a LiveKit room (model/livekit-pairing.ts, driven through `step`): a lone participant's
// offer and candidates parked, the pair joined crosswise, relays between them, and the wait for a peer.
import { describe, expect, it } from "vitest";
import { emptyRoom, nextDeadline } from "../model/livekit-model";
import { NORMAL_CLOSURE } from "../model/close-codes";
import { DisconnectReason } from "../proto/gen/livekit_models_pb";
import { LeaveRequest_Action, SignalTarget } from "../proto/gen/livekit_rtc_pb";
import { ANSWER, CANDIDATE, DATA_OFFER } from "./livekit-fixtures";
import { answer, offer, pairedRoom, Room, T0, trickle } from "./livekit-room-driver";

describe("livekit room: waiting for a peer and pairing", () => {
  it("parks a lone participant's offer and candidates without answering them", () => {
    const room = new Room();
    room.join("a1", "alice");
    expect(room.send("a1", offer(DATA_OFFER, 1))).toEqual([]);
    expect(room.send("a1", trickle(SignalTarget.PUBLISHER))).toEqual([]);
    expect(room.session("alice")).toMatchObject({ offer: { id: 1, answered: false }, candidates: [CANDIDATE] });
  });

  it("keeps at most 64 candidates for a lone participant", () => {
    const room = new Room();
    room.join("a1", "alice");
    for (let i = 0; i <= 64; i++) room.send("a1", trickle(SignalTarget.PUBLISHER, `c${i}`));
    expect(room.session("alice")!.candidates).toHaveLength(64);
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

  it("schedules a lone participant's deadline 12 s after its join", () => {
    const room = new Room();
    room.join("a1", "alice");
    expect(nextDeadline(room.state)).toBe(T0 + 12_000);
  });

  it("sends leave JOIN_FAILURE to a participant still alone when its wait ends, and removes it", () => {
    const room = new Room();
    room.join("a1", "alice");
    room.tick(T0 + 12_000);
    expect(room.first("a1", "leave")).toMatchObject({ reason: DisconnectReason.JOIN_FAILURE, action: LeaveRequest_Action.DISCONNECT });
    expect(room.closes("a1")).toMatchObject([{ code: NORMAL_CLOSURE }]);
    expect(room.state).toEqual(emptyRoom("room-1"));
  });

  it("lets a participant wait until its deadline", () => {
    const room = new Room();
    room.join("a1", "alice");
    expect(room.tick(T0 + 12_000 - 1)).toEqual([]);
  });

  it("clears the wait deadline once two participants are paired", () => {
    expect(nextDeadline(pairedRoom().state)).toBeUndefined();
  });
});

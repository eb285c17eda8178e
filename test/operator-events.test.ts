// The operator events of a call (model/operator-events.ts), derived from the call model's
// transitions without I/O: unit tests for each door's four events, and a property test over random
// event sequences for what a webhook receiver relies on.
import { Code } from "@connectrpc/connect";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { step, type CallEvent, type CallState, type Door } from "../model/call-model";
import { emptyRoom, type RoomState, type Session } from "../model/livekit-model";
import {
  audioRoomEvents, audioRoomReported, callEvents, directoryShard, liveKitRoomEvents, webhookUrls, type OperatorEvent,
} from "../model/operator-events";

const ID = "0b5c6f1e-3a1d-4c8e-9f00-123456789abc";

function start(door: Door = "viam"): CallEvent {
  return { type: "start", id: ID, host: "robot", caller: { identity: "alice", door }, sdp: "offer", disableTrickle: false,
    deadline: 60_000, now: 1_000 };
}

/** Runs the call's events in order; each must be accepted. Returns the operator events of every step. */
function run(events: CallEvent[]): { state: CallState; events: OperatorEvent[] } {
  let state: CallState | undefined;
  const out: OperatorEvent[] = [];
  let claimedAt: number | undefined;
  for (const event of events) {
    const t = step(state, event);
    if (!t.ok) throw new Error(`${event.type} refused: ${t.message}`);
    if (event.type === "claim") claimedAt = event.now;
    out.push(...callEvents(state, t.state, event.now, { caller: 1_000, ...(claimedAt ? { callee: claimedAt } : {}) }));
    state = t.state;
  }
  return { state: state!, events: out };
}

const names = (events: OperatorEvent[]) => events.map((e) => `${e.event}${e.participant ? `:${e.participant.identity}` : ""}`);

describe("operator events of a call", () => {
  it("a Viam→Voice call that completes its exchange starts, joins both, and finishes when both are done", () => {
    const { events } = run([start("viam"), { type: "claim", callee: { identity: "robot", door: "voice" }, now: 2_000 },
      { type: "answer", sdp: "answer", now: 3_000 }, { type: "done", from: "caller", now: 4_000 },
      { type: "done", from: "callee", now: 5_000 }]);
    expect(names(events)).toEqual(["room_started", "participant_joined:alice", "participant_joined:robot",
      "participant_left:alice", "participant_left:robot", "room_finished"]);
    expect(events.find((e) => e.event === "participant_joined" && e.participant?.identity === "robot")?.participant?.joinedAt).toBe(2_000);
    expect(events.at(-1)).toMatchObject({ at: 5_000, room: { name: ID, numParticipants: 0 } });
  });

  it("a caller done before the answer has not left: it leaves once the answer came", () => {
    const { events } = run([start(), { type: "done", from: "caller", now: 1_500 },
      { type: "claim", callee: { identity: "robot", door: "viam" }, now: 2_000 }]);
    expect(names(events)).toEqual(["room_started", "participant_joined:alice", "participant_joined:robot"]);
    const answered = step(run([start(), { type: "done", from: "caller", now: 1_500 },
      { type: "claim", callee: { identity: "robot", door: "viam" }, now: 2_000 }]).state, { type: "answer", sdp: "a", now: 3_000 });
    expect(answered.ok).toBe(true);
  });

  it("a SIP call stays open after both sides' done, until a hang-up", () => {
    const { events } = run([start("sip"), { type: "done", from: "caller", now: 1_100 },
      { type: "claim", callee: { identity: "bob", door: "sip" }, now: 2_000 }, { type: "answer", sdp: "a", now: 3_000 },
      { type: "done", from: "callee", now: 3_100 }]);
    expect(names(events)).toEqual(["room_started", "participant_joined:alice", "participant_joined:bob"]);
    const hungUp = run([start("sip"), { type: "done", from: "caller", now: 1_100 },
      { type: "claim", callee: { identity: "bob", door: "sip" }, now: 2_000 }, { type: "answer", sdp: "a", now: 3_000 },
      { type: "done", from: "callee", now: 3_100 }, { type: "hangup", from: "callee", now: 9_000 }]);
    expect(names(hungUp.events).slice(3)).toEqual(["participant_left:alice", "participant_left:bob", "room_finished"]);
    expect(hungUp.events[3].participant).toMatchObject({ kind: "sip", state: "disconnected", disconnectReason: "client_initiated" });
  });

  it("a call that fails before its answer aborts its participants' connections", () => {
    const { events } = run([start(), { type: "claim", callee: { identity: "robot", door: "viam" }, now: 2_000 },
      { type: "fail", from: "caller", code: Code.Unavailable, message: "the caller disconnected", now: 2_500 }]);
    expect(names(events).slice(3)).toEqual(["participant_connection_aborted:alice", "participant_connection_aborted:robot",
      "room_finished"]);
    expect(events[3].participant?.disconnectReason).toBe("signal_close");
  });

  it("an offer nobody takes times out: the caller's connection is aborted and the room finishes", () => {
    const { events } = run([start(), { type: "timeout", now: 61_000 }]);
    expect(names(events)).toEqual(["room_started", "participant_joined:alice", "participant_connection_aborted:alice",
      "room_finished"]);
    expect(events[2].participant?.disconnectReason).toBe("connection_timeout");
  });

  it("an operator's ending names itself in the reason", () => {
    const { state } = run([start()]);
    const ended = step(state, { type: "reject", code: Code.Aborted, message: "ended by an operator", now: 5_000 });
    if (!ended.ok) throw new Error("refused");
    const events = callEvents(state, ended.state, 5_000, {}, "room_deleted");
    expect(events.map((e) => e.participant?.disconnectReason ?? e.event)).toEqual(["room_deleted", "room_finished"]);
  });

  it("a room's metadata names its doors", () => {
    const { events } = run([start("sip"), { type: "claim", callee: { identity: "robot", door: "voice" }, now: 2_000 }]);
    expect(JSON.parse(events.at(-1)!.room.metadata)).toEqual({ kind: "call", host: "robot", doors: { caller: "sip", callee: "voice" } });
  });
});

describe("operator events: properties", () => {
  const doors: Door[] = ["viam", "voice", "sip", "audio", "livekit"];
  const callEvent = fc.oneof(
    fc.record({ type: fc.constant("claim" as const), callee: fc.record({ identity: fc.constant("bob"), door: fc.constantFrom(...doors) }) }),
    fc.constant({ type: "answer" as const, sdp: "answer" }),
    fc.record({ type: fc.constant("done" as const), from: fc.constantFrom("caller" as const, "callee" as const) }),
    fc.record({ type: fc.constant("hangup" as const), from: fc.constantFrom("caller" as const, "callee" as const) }),
    fc.record({ type: fc.constant("fail" as const), from: fc.constantFrom("caller" as const, "callee" as const),
      code: fc.constant(Code.Unavailable), message: fc.constant("gone") }),
    fc.constant({ type: "timeout" as const }),
    fc.constant({ type: "reject" as const, code: Code.Aborted, message: "operator" }),
  );

  it("every room starts once, each participant joins before it leaves, once each, and nothing follows room_finished", () => {
    fc.assert(fc.property(fc.constantFrom(...doors), fc.array(callEvent, { maxLength: 12 }), (door, steps) => {
      let state: CallState | undefined;
      const out: OperatorEvent[] = [];
      let now = 1_000;
      for (const partial of [start(door), ...steps]) {
        now += 10;
        const event = { ...partial, now } as CallEvent;
        const t = step(state, event);
        if (!t.ok) continue;
        out.push(...callEvents(state, t.state, now));
        state = t.state;
      }
      expect(out[0].event).toBe("room_started");
      expect(out.filter((e) => e.event === "room_started")).toHaveLength(1);
      const finished = out.findIndex((e) => e.event === "room_finished");
      if (finished >= 0) expect(finished).toBe(out.length - 1);
      for (const identity of ["alice", "bob"]) {
        const mine = out.filter((e) => e.participant?.identity === identity).map((e) => e.event);
        if (!mine.length) continue;
        expect(mine[0]).toBe("participant_joined");
        expect(mine.filter((e) => e === "participant_joined")).toHaveLength(1);
        expect(mine.length).toBeLessThanOrEqual(2);
        // Whoever joined has left by the time the room finishes.
        if (finished >= 0) expect(mine).toHaveLength(2);
      }
      // An ended call is a finished room.
      if (state?.phase === "ended") expect(finished).toBeGreaterThan(0);
    }), { numRuns: 500 });
  });
});

describe("operator events of a LiveKit room", () => {
  const session = (sid: string, identity: string, extra: Partial<Session> = {}) =>
    ({ sid, identity, name: identity, metadata: "", joinedAt: 1_000, connection: `c-${sid}`, ...extra }) as Session;
  const room = (...sessions: Session[]): RoomState => ({ ...emptyRoom("lk"), sid: sessions.length ? "RM_x" : "", createdAt: 900, sessions });

  it("starts with the first participant, and finishes with the last", () => {
    const alice = session("PA_a", "alice", { peerEpoch: "e" });
    const bob = session("PA_b", "bob", { peerEpoch: "e" });
    expect(names(liveKitRoomEvents(room(), room(alice), 1_000))).toEqual(["room_started", "participant_joined:alice"]);
    expect(names(liveKitRoomEvents(room(alice), room(alice, bob), 2_000))).toEqual(["participant_joined:bob"]);
    expect(names(liveKitRoomEvents(room(alice, bob), room(alice), 3_000))).toEqual(["participant_left:bob"]);
    const last = liveKitRoomEvents(room(alice), room(), 4_000);
    expect(names(last)).toEqual(["participant_left:alice", "room_finished"]);
    expect(last[1].room).toMatchObject({ sid: "RM_x", name: "lk", numParticipants: 0 });
  });

  it("a participant that never had a peer aborts its connection; a resume is no event", () => {
    const alone = session("PA_a", "alice", { waitUntil: 2_000 });
    const [left] = liveKitRoomEvents(room(alone), room(), 2_000);
    expect(left).toMatchObject({ event: "participant_connection_aborted", participant: { disconnectReason: "join_failure" } });
    expect(liveKitRoomEvents(room(alone), room({ ...alone, connection: "c-new" }), 1_500)).toEqual([]);
  });
});

describe("operator events of an audio relay room", () => {
  it("starts with the first user, finishes with the last; the same users again change nothing", () => {
    const first = audioRoomEvents("lobby", undefined, ["alice"], 1_000, "RM_1");
    expect(names(first.events)).toEqual(["room_started", "participant_joined:alice"]);
    const second = audioRoomEvents("lobby", first.record, ["alice", "bob"], 2_000, "RM_2");
    expect(names(second.events)).toEqual(["participant_joined:bob"]);
    expect(second.record?.sid).toBe("RM_1");
    expect(audioRoomEvents("lobby", second.record, ["bob", "alice"], 2_500, "RM_3").events).toEqual([]);
    const last = audioRoomEvents("lobby", second.record, [], 3_000, "RM_4", "room_deleted");
    expect(names(last.events)).toEqual(["participant_left:alice", "participant_left:bob", "room_finished"]);
    expect(last.events[0].participant).toMatchObject({ joinedAt: 1_000, disconnectReason: "room_deleted" });
    expect(last.record).toBeUndefined();
  });

  it("leaves a call's media room to the call: a room named by a call id reports nothing", () => {
    expect(audioRoomReported(ID)).toBe(false);
    expect(audioRoomReported("lobby")).toBe(true);
  });
});

describe("directory shards and webhook URLs", () => {
  it("spreads call ids evenly over the shards", () => {
    const counts = new Array(16).fill(0);
    for (let i = 0; i < 16_000; i++) counts[directoryShard(crypto.randomUUID(), 16)]++;
    for (const n of counts) expect(n).toBeGreaterThan(800);
  });

  it("reads WEBHOOK_URLS as comma-separated http(s) URLs", () => {
    expect(webhookUrls(" http://127.0.0.1:9/a , ,https://x.example/h,ftp://no")).toEqual(["http://127.0.0.1:9/a", "https://x.example/h"]);
    expect(webhookUrls("")).toEqual([]);
    expect(webhookUrls(undefined)).toEqual([]);
  });
});

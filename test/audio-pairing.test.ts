// The audio room's pairing rules as a pure function: every transition, without sockets.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { relaysDataAsIs, step, type Parties, type Party, type PairingEvent, type PairingState } from "../model/audio-pairing";
import { AudioMessageType, SampleFormat, type AudioPacket } from "../codecs/audio-codec";

const EMPTY = new Uint8Array(0);
const PARAMS = { sampleRate: 16_000, channels: 1, format: SampleFormat.Int16, chunkSize: 320 };
const handshake = (username: string): AudioPacket =>
  ({ type: AudioMessageType.Handshake, params: PARAMS, username, optional: new Uint8Array([1]) });
const simple = (type: 1 | 3 | 4 | 5): AudioPacket => (type === 1 ? { type } : { type, optional: EMPTY });
const counter: AudioPacket = { type: AudioMessageType.CounterProposal, params: PARAMS, optional: EMPTY };
const data: AudioPacket = { type: AudioMessageType.Data, data: new Uint8Array([9]) };
const DROP = { type: AudioMessageType.Drop, optional: EMPTY };

const idle = (identity: string, stale = false): Party => (stale ? { identity, state: "idle", staleFramesExpected: true } : { identity, state: "idle" });
const inCall = (identity: string, state: PairingState, peer: string): Party => ({ identity, state, peer });
const room = (...parties: Party[]) => new Map(parties.map((p) => [p.identity, p]));
const merge = (...rooms: Parties[]) => new Map(rooms.flatMap((r) => [...r]));
const packet = (from: string, p: AudioPacket): PairingEvent => ({ type: "packet", from, packet: p });

/** Alice called Bob; `aliceState`/`bobState` say how far the call got. */
const call = (aliceState: PairingState, bobState: PairingState) =>
  room(inCall("alice", aliceState, "bob"), inCall("bob", bobState, "alice"));

describe("audio pairing: dialling", () => {
  it("rings an idle callee with the handshake renamed to the caller", () => {
    const t = step(room(idle("alice"), idle("bob")), packet("alice", handshake("bob")));
    expect(t.parties).toEqual(call("calling", "ringing"));
    expect(t.effects).toEqual([{ type: "send", to: "bob", packet: handshake("alice") }]);
  });

  it("answers a handshake to someone not in the room with user-not-found", () => {
    const t = step(room(idle("alice")), packet("alice", handshake("bob")));
    expect(t.parties.get("alice")?.state).toBe("idle");
    expect(t.effects).toEqual([{ type: "send", to: "alice", packet: { type: AudioMessageType.UserNotFound } }]);
  });

  it("answers a handshake to oneself with user-not-found", () => {
    const t = step(room(idle("alice")), packet("alice", handshake("alice")));
    expect(t.effects).toEqual([{ type: "send", to: "alice", packet: { type: AudioMessageType.UserNotFound } }]);
  });

  it("treats identities named like object internals as plain names", () => {
    const t = step(room(idle("__proto__"), idle("constructor")), packet("__proto__", handshake("constructor")));
    expect(t.parties).toEqual(room(inCall("__proto__", "calling", "constructor"), inCall("constructor", "ringing", "__proto__")));
  });

  it("rejects a handshake to a party busy in another call", () => {
    const parties = merge(room(idle("carol")), call("paired", "paired"));
    const t = step(parties, packet("carol", handshake("bob")));
    expect(t.parties.get("bob")).toBe(parties.get("bob"));
    expect(t.effects).toEqual([{ type: "send", to: "carol", packet: simple(3) }]);
  });

  it("closes a caller that dials while already in a call and drops its peer", () => {
    const t = step(merge(call("paired", "paired"), room(idle("carol"))), packet("alice", handshake("carol")));
    expect(t.parties.get("alice")).toBeUndefined();
    expect(t.parties.get("bob")).toEqual(idle("bob", true));
    expect(t.effects).toEqual([
      { type: "send", to: "bob", packet: DROP },
      { type: "close", identity: "alice", code: 1002, reason: "handshake while paired: one call per socket" },
    ]);
  });
});

describe("audio pairing: answers", () => {
  it("pairs both when the callee accepts and forwards the accept", () => {
    const t = step(call("calling", "ringing"), packet("bob", simple(4)));
    expect(t.parties).toEqual(call("paired", "paired"));
    expect(t.effects).toEqual([{ type: "forward", to: "alice" }]);
  });

  it("puts a counter-proposal before the caller", () => {
    const t = step(call("calling", "ringing"), packet("bob", counter));
    expect(t.parties).toEqual(call("considering", "countering"));
    expect(t.effects).toEqual([{ type: "forward", to: "alice" }]);
  });

  it("pairs both when the caller accepts a counter-proposal", () => {
    const t = step(call("considering", "countering"), packet("alice", simple(4)));
    expect(t.parties).toEqual(call("paired", "paired"));
    expect(t.effects).toEqual([{ type: "forward", to: "bob" }]);
  });

  it("ends the call when the callee rejects the handshake", () => {
    const t = step(call("calling", "ringing"), packet("bob", simple(3)));
    expect(t.parties).toEqual(room(idle("alice", true), idle("bob")));
    expect(t.effects).toEqual([{ type: "forward", to: "alice" }]);
  });

  it("ends the call when the caller rejects a counter-proposal", () => {
    const t = step(call("considering", "countering"), packet("alice", simple(3)));
    expect(t.parties).toEqual(room(idle("alice"), idle("bob", true)));
    expect(t.effects).toEqual([{ type: "forward", to: "bob" }]);
  });

  it("closes a caller that accepts before the callee answered", () => {
    const t = step(call("calling", "ringing"), packet("alice", simple(4)));
    expect(t.effects.at(-1)).toMatchObject({ type: "close", identity: "alice", code: 1002 });
  });

  it("closes a callee that answers its own counter-proposal", () => {
    const t = step(call("considering", "countering"), packet("bob", simple(4)));
    expect(t.effects.at(-1)).toMatchObject({ type: "close", identity: "bob", code: 1002 });
  });

  it("closes a caller that sends a counter-proposal", () => {
    const t = step(call("calling", "ringing"), packet("alice", counter));
    expect(t.effects.at(-1)).toMatchObject({ type: "close", identity: "alice", code: 1002 });
  });

  it("closes a socket that accepts with no call pending", () => {
    const t = step(room(idle("alice")), packet("alice", simple(4)));
    expect(t.effects).toEqual([{ type: "close", identity: "alice", code: 1002, reason: "message type 4 not allowed while idle" }]);
  });

  it("closes a client that sends user-not-found", () => {
    const t = step(room(idle("alice")), packet("alice", simple(1)));
    expect(t.effects).toMatchObject([{ type: "close", identity: "alice", code: 1002 }]);
  });
});

describe("audio pairing: data and hang-up", () => {
  it("forwards data between paired parties without touching their state", () => {
    const parties = call("paired", "paired");
    const t = step(parties, packet("bob", data));
    expect(t.parties.get("alice")).toBe(parties.get("alice"));
    expect(t.parties.get("bob")).toBe(parties.get("bob"));
    expect(t.effects).toEqual([{ type: "forward", to: "alice" }]);
  });

  it("relays as is (relaysDataAsIs) only data that step forwards to the peer with no party changed", () => {
    const states = fc.constantFrom<PairingState>("idle", "calling", "ringing", "considering", "countering", "paired");
    const party = (identity: string) => fc.record({ state: states, peer: fc.constantFrom("alice", "bob", "carol", undefined),
      stale: fc.boolean() }).map(({ state, peer, stale }): Party =>
      ({ identity, state, ...(peer !== undefined ? { peer } : {}), ...(stale ? { staleFramesExpected: true as const } : {}) }));
    let relayed = 0;
    fc.assert(fc.property(party("alice"), party("bob"), (alice, bob) => {
      if (!relaysDataAsIs(alice, bob)) return;
      relayed++;
      const parties = room(alice, bob);
      const t = step(parties, packet("alice", data));
      expect(t.effects).toEqual([{ type: "forward", to: "bob" }]);
      for (const [identity, p] of parties) expect(t.parties.get(identity)).toBe(p);
    }), { numRuns: 5_000 });
    // Not vacuous: the paired pair is among the cases drawn.
    expect(relayed).toBeGreaterThan(0);
    expect(relaysDataAsIs(inCall("alice", "paired", "bob"), inCall("bob", "paired", "alice"))).toBe(true);
    expect(relaysDataAsIs(inCall("alice", "paired", "bob"), inCall("bob", "paired", "carol"))).toBe(false);
  });

  it("closes a caller that sends data before the accept and drops the callee", () => {
    const t = step(call("calling", "ringing"), packet("alice", data));
    expect(t.parties).toEqual(room(idle("bob", true)));
    expect(t.effects).toMatchObject([{ type: "send", to: "bob", packet: DROP }, { type: "close", identity: "alice", code: 1002 }]);
  });

  it("forwards a drop and leaves both idle", () => {
    const t = step(call("paired", "paired"), packet("alice", simple(5)));
    expect(t.parties).toEqual(room(idle("alice"), idle("bob", true)));
    expect(t.effects).toEqual([{ type: "forward", to: "bob" }]);
  });

  it("lets a caller cancel a ringing call with a drop", () => {
    const t = step(call("calling", "ringing"), packet("alice", simple(5)));
    expect(t.effects).toEqual([{ type: "forward", to: "bob" }]);
  });

  it("discards data and drops in flight from a party whose call the peer ended", () => {
    const parties = room(idle("alice", true));
    expect(step(parties, packet("alice", data))).toEqual({ parties, effects: [] });
    expect(step(parties, packet("alice", simple(5)))).toEqual({ parties, effects: [] });
  });

  it("stops discarding once the party makes a valid move", () => {
    const dialled = step(room(idle("alice", true), idle("bob")), packet("alice", handshake("bob")));
    const t = step(dialled.parties, packet("alice", data));
    expect(t.effects.at(-1)).toMatchObject({ type: "close", identity: "alice", code: 1002 });
  });

  it("closes a party that drops with no call and no call just ended", () => {
    const t = step(room(idle("alice")), packet("alice", simple(5)));
    expect(t.effects).toMatchObject([{ type: "close", identity: "alice", code: 1002 }]);
  });
});

describe("audio pairing: sockets coming and going", () => {
  it("tells the peer of a party that left with a drop", () => {
    const t = step(call("paired", "paired"), { type: "left", identity: "bob" });
    expect(t.parties).toEqual(room(idle("alice", true)));
    expect(t.effects).toEqual([{ type: "send", to: "alice", packet: DROP }]);
  });

  it("closes a replaced socket with 1008 and drops its call", () => {
    const t = step(call("calling", "ringing"), { type: "replaced", identity: "alice" });
    expect(t.effects).toEqual([
      { type: "send", to: "bob", packet: DROP },
      { type: "close", identity: "alice", code: 1008, reason: "replaced by a newer connection" },
    ]);
  });

  it("closes a socket with the code of its violation and drops its peer", () => {
    const t = step(call("paired", "paired"), { type: "violation", from: "alice", code: 1009, reason: "too big" });
    expect(t.effects).toEqual([
      { type: "send", to: "bob", packet: DROP },
      { type: "close", identity: "alice", code: 1009, reason: "too big" },
    ]);
  });

  it("leaves a former peer alone when it is in another call by now", () => {
    const parties = room(inCall("alice", "paired", "bob"), inCall("bob", "paired", "carol"), inCall("carol", "paired", "bob"));
    const t = step(parties, { type: "left", identity: "alice" });
    expect(t.effects).toEqual([]);
    expect(t.parties.get("bob")).toBe(parties.get("bob"));
  });

  it("ends an unanswered call at its ring timeout with a drop to both, leaving both idle", () => {
    for (const [a, b] of [["calling", "ringing"], ["considering", "countering"]] as const) {
      const t = step(call(a, b), { type: "ring_timeout", identity: "alice" });
      expect(t.parties).toEqual(room(idle("alice", true), idle("bob", true)));
      expect(t.effects).toEqual([{ type: "send", to: "bob", packet: DROP }, { type: "send", to: "alice", packet: DROP }]);
    }
  });

  it("lets a ring timeout pass over a paired or idle party", () => {
    expect(step(call("paired", "paired"), { type: "ring_timeout", identity: "alice" }).effects).toEqual([]);
    expect(step(room(idle("alice")), { type: "ring_timeout", identity: "alice" }).effects).toEqual([]);
  });

  it("ends the call of a party whose peer vanished and discards its frame", () => {
    const t = step(room(inCall("alice", "paired", "bob")), packet("alice", data));
    expect(t.parties).toEqual(room(idle("alice", true)));
    expect(t.effects).toEqual([{ type: "send", to: "alice", packet: DROP }]);
  });
});

describe("audio pairing invariants", () => {
  const names = ["a", "b", "c"] as const;
  const packets: fc.Arbitrary<AudioPacket> = fc.oneof(
    fc.constantFrom(...names, "d").map(handshake),
    fc.constantFrom<1 | 3 | 4 | 5>(1, 3, 4, 5).map(simple),
    fc.constant(counter),
    fc.constant(data),
  );
  const events: fc.Arbitrary<PairingEvent> = fc.oneof(
    { weight: 8, arbitrary: fc.tuple(fc.constantFrom(...names), packets).map(([from, p]) => packet(from, p)) },
    { weight: 1, arbitrary: fc.constantFrom(...names).map((identity): PairingEvent => ({ type: "left", identity })) },
    { weight: 1, arbitrary: fc.constantFrom(...names).map((identity): PairingEvent => ({ type: "replaced", identity })) },
    { weight: 1, arbitrary: fc.constantFrom(...names).map((identity): PairingEvent => ({ type: "ring_timeout", identity })) },
  );
  const partner: Partial<Record<PairingState, PairingState>> =
    { calling: "ringing", ringing: "calling", considering: "countering", countering: "considering", paired: "paired" };

  it("keeps every call two-sided and every message addressed to the sender's peer or itself", () => {
    fc.assert(fc.property(fc.array(events, { maxLength: 60 }), (sequence) => {
      let parties = room(...names.map((n) => idle(n)));
      for (const event of sequence) {
        const sender = "from" in event ? event.from : event.identity;
        if (!parties.has(sender)) parties.set(sender, idle(sender)); // the identity reconnects
        const before = parties.get(sender)!;
        const t = step(parties, event);
        for (const effect of t.effects) {
          if (effect.type === "forward") expect(effect.to).toBe(before.peer);
          if (effect.type === "close") expect(effect.identity).toBe(sender);
        }
        for (const party of t.parties.values()) {
          if (party.state === "idle") { expect(party.peer).toBeUndefined(); continue; }
          const peer = t.parties.get(party.peer!);
          expect(peer?.peer).toBe(party.identity);
          expect(peer?.state).toBe(partner[party.state]);
        }
        parties = t.parties;
      }
    }), { numRuns: 1_000 });
  });
});

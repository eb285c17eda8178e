// The SIP account rules (model/sip-model.ts) without I/O: unit tests for each decision,
// and property tests over random event sequences for the invariants every door relies on.
import { Code } from "@connectrpc/connect";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  isAvailable, needsConnectedCall, newAccount, NEXT_STATUSES, nextDeadline, step, STATUS_NAMES,
  type SipAccountState, type SipEffect, type SipEvent, type StatusName,
} from "../model/sip-model";
import { SipStatus_StatusType } from "../proto/gen/ondewo/sip/sip_pb";

const BASE = "ws://host/audio/";

/** Runs events in order, each of which must be accepted; returns the final state and all effects. */
function run(events: SipEvent[], from: SipAccountState = newAccount("alice")) {
  let state = from;
  const effects: SipEffect[] = [];
  for (const event of events) {
    const t = step(state, event);
    if (!t.ok) throw new Error(`${event.type} refused: ${t.message}`);
    state = t.state;
    effects.push(...t.effects);
  }
  return { state, effects, statuses: effects.flatMap((e) => (e.type === "status" ? [e.entry.type] : [])) };
}

const ready: SipEvent[] = [
  { type: "register", now: 1 },
  { type: "start_session", autoAnswerSeconds: 0, audioBase: BASE, now: 2 },
];
const dial = (callId = "c1"): SipEvent =>
  ({ type: "dial", callId, callee: "bob", headers: { topic: "t" }, ringDeadline: 30_000, now: 10 });
const ring = (callId = "c1"): SipEvent =>
  ({ type: "ring", callId, caller: "bob", headers: {}, ringDeadline: 30_000, now: 10 });

describe("sip-model: status names", () => {
  it("uses the wire's StatusType names and values", () => {
    STATUS_NAMES.forEach((name, value) => expect(SipStatus_StatusType[name]).toBe(value));
  });
});

describe("sip-model: sessions", () => {
  it("registers a new account into registered", () => {
    expect(run([{ type: "register", now: 1 }]).statuses).toEqual(["registered"]);
  });

  it("refuses to register again while a session is active", () => {
    const { state } = run(ready);
    const t = step(state, { type: "register", now: 3 });
    expect(t).toMatchObject({ ok: false, code: Code.FailedPrecondition });
  });

  it("hangs up the call before ending the session", () => {
    const { statuses, state } = run([...ready, dial(), { type: "end_session", now: 11 }]);
    expect(statuses.slice(-3)).toEqual(["hard_hangup_initiated", "outgoing_call_finished", "no_session"]);
    expect(state.call).toBeUndefined();
    expect(state.session).toBeUndefined();
  });

  it("names the current state when StartCall has no session", () => {
    const t = step(run([{ type: "register", now: 1 }]).state, dial());
    expect(t.ok).toBe(false);
    if (!t.ok) expect(t.message).toContain("state registered");
  });

  it("is available to take calls only with a session and no call", () => {
    expect(isAvailable(run([{ type: "register", now: 1 }]).state)).toBe(false);
    expect(isAvailable(run(ready).state)).toBe(true);
    expect(isAvailable(run([...ready, dial()]).state)).toBe(false);
  });
});

describe("sip-model: calls", () => {
  it("places an outgoing call: initiated status, the call in the call model, a dialing audio leg", () => {
    const { statuses, effects } = run([...ready, dial()]);
    expect(statuses.at(-1)).toBe("outgoing_call_initiated");
    expect(effects).toContainEqual({ type: "start_call", callId: "c1", callee: "bob", meta: { topic: "t" }, ringDeadline: 30_000 });
    expect(effects).toContainEqual({ type: "open_leg", callId: "c1", peer: "bob", dials: true, dialUntil: 30_000 });
  });

  it("adds call-id, audio-url and muted to the caller's headers", () => {
    const { effects } = run([...ready, dial()]);
    const initiated = effects.find((e) => e.type === "status" && e.entry.type === "outgoing_call_initiated");
    expect(initiated).toMatchObject({ entry: { calleeId: "bob",
      headers: { topic: "t", "call-id": "c1", "audio-url": `${BASE}c1`, muted: "false" } } });
  });

  it("answers an incoming call at the auto-answer time and not before", () => {
    const auto = [{ type: "register", now: 1 }, { type: "start_session", autoAnswerSeconds: 2, audioBase: BASE, now: 2 }] as SipEvent[];
    const { state } = run([...auto, ring()]);
    expect(nextDeadline(state)).toBe(2_010);
    const early = step(state, { type: "tick", now: 2_009 });
    expect(early.ok && early.effects).toEqual([]);
    const due = step(state, { type: "tick", now: 2_010 });
    expect(due.ok && due.effects).toEqual([{ type: "answer_call", callId: "c1" }]);
    // Answering is under way: the next tick must not answer again.
    expect(due.ok && nextDeadline(due.state)).toBe(30_000);
  });

  it("fails a ringing call at the ring timeout on the side whose alarm fires", () => {
    const { state } = run([...ready, dial()]);
    const t = step(state, { type: "tick", now: 30_000 });
    expect(t.ok && t.effects.filter((e) => e.type === "status").map((e) => e.type === "status" && e.entry.type))
      .toEqual(["outgoing_call_failed"]);
    expect(t.ok && t.effects).toContainEqual(expect.objectContaining({ type: "end_call", code: Code.DeadlineExceeded }));
  });

  it("ends a ringing call that a party hung up as finished, and one that failed as failed", () => {
    const hungUp = run([...ready, ring(), { type: "ended", callId: "c1", failed: false, reason: "bob hung up", now: 11 }]);
    expect(hungUp.statuses.at(-1)).toBe("incoming_call_finished");
    const failed = run([...ready, ring(), { type: "ended", callId: "c1", failed: true, reason: "timeout", now: 11 }]);
    expect(failed.statuses.at(-1)).toBe("incoming_call_failed");
  });

  it("ends a connected call as finished even when it ended with an error", () => {
    const { statuses } = run([...ready, dial(), { type: "connected", callId: "c1", now: 11 },
      { type: "ended", callId: "c1", failed: true, reason: "gone", now: 12 }]);
    expect(statuses.slice(-2)).toEqual(["outgoing_call_connected", "outgoing_call_finished"]);
  });

  it("ignores news about a call that is not the current one", () => {
    const { state } = run([...ready, dial("c2")]);
    const t = step(state, { type: "connected", callId: "c1", now: 11 });
    expect(t).toEqual({ ok: true, state, effects: [] });
  });

  it("declines a ringing incoming call on EndCall, which fails the call for the caller", () => {
    const { effects, statuses } = run([...ready, ring(), { type: "hangup", hard: true, now: 11 }]);
    expect(statuses.slice(-2)).toEqual(["hard_hangup_initiated", "incoming_call_finished"]);
    expect(effects).toContainEqual(expect.objectContaining({ type: "end_call", side: "callee", code: Code.Unavailable, claimFirst: true }));
  });

  it("lets queued audio finish on a soft hangup, for 60 s at most", () => {
    const { state, statuses, effects } = run([...ready, dial(), { type: "connected", callId: "c1", now: 11 },
      { type: "hangup", hard: false, now: 12 }]);
    expect(statuses.at(-1)).toBe("soft_hangup_initiated");
    expect(effects.at(-1)).toEqual({ type: "drain", callId: "c1" });
    expect(nextDeadline(state)).toBe(12 + 60_000);
    const drained = run([{ type: "drained", callId: "c1", now: 13 }], state);
    expect(drained.statuses).toEqual(["outgoing_call_finished"]);
  });

  it("repeats the current status with the muted header changed on Mute and UnMute", () => {
    const { effects } = run([...ready, dial(), { type: "connected", callId: "c1", now: 11 },
      { type: "mute", muted: true, now: 12 }, { type: "mute", muted: true, now: 13 }, { type: "mute", muted: false, now: 14 }]);
    const entries = effects.flatMap((e) => (e.type === "status" ? [e.entry] : [])).slice(-3);
    expect(entries.map((e) => [e.type, e.headers.muted])).toEqual([
      ["outgoing_call_connected", "false"], ["outgoing_call_connected", "true"], ["outgoing_call_connected", "false"]]);
  });

  it("refuses PlayWavFiles outside a connected call, naming the state", () => {
    expect(needsConnectedCall(run([...ready, dial()]).state, "PlayWavFiles")?.message).toContain("state outgoing_call_initiated");
    expect(needsConnectedCall(run([...ready, dial(), { type: "connected", callId: "c1", now: 11 }]).state, "PlayWavFiles")).toBeUndefined();
  });

  it("transfers: transfer_call_initiated then finished, both naming the target", () => {
    const { effects } = run([...ready, dial(), { type: "connected", callId: "c1", now: 11 },
      { type: "transfer_begin", now: 12 }, { type: "transfer", target: "carol", headers: { why: "x" }, now: 13 }]);
    const entries = effects.flatMap((e) => (e.type === "status" ? [e.entry] : [])).slice(-2);
    expect(entries.map((e) => [e.type, e.transferCallId, e.headers.why])).toEqual([
      ["transfer_call_initiated", "carol", "x"], ["outgoing_call_finished", "carol", undefined]]);
  });

  it("re-calls the transfer target from the far party's side", () => {
    const { statuses, state } = run([...ready, ring(), { type: "connected", callId: "c1", now: 11 },
      { type: "recalled", oldCallId: "c1", target: "carol", newCallId: "c2", headers: {}, ringDeadline: 40_000, now: 12 }]);
    expect(statuses.slice(-2)).toEqual(["incoming_call_finished", "outgoing_call_initiated"]);
    expect(state.call).toMatchObject({ id: "c2", peer: "carol", direction: "outgoing", transferId: "carol" });
  });
});

describe("sip-model: properties", () => {
  const ids = fc.constantFrom("c1", "c2");
  const now = fc.integer({ min: 0, max: 100_000 });
  const event: fc.Arbitrary<SipEvent> = fc.oneof(
    fc.record({ type: fc.constant("register" as const), now }),
    fc.record({ type: fc.constant("start_session" as const), autoAnswerSeconds: fc.integer({ min: 0, max: 5 }), audioBase: fc.constant(BASE), now }),
    fc.record({ type: fc.constant("end_session" as const), now }),
    fc.record({ type: fc.constant("dial" as const), callId: ids, callee: fc.constant("bob"), headers: fc.constant({}), ringDeadline: now, now }),
    fc.record({ type: fc.constant("ring" as const), callId: ids, caller: fc.constant("bob"), headers: fc.constant({}), ringDeadline: now, now }),
    fc.record({ type: fc.constant("connected" as const), callId: ids, now }),
    fc.record({ type: fc.constant("ended" as const), callId: ids, failed: fc.boolean(), reason: fc.constant("r"), now }),
    fc.record({ type: fc.constant("hangup" as const), hard: fc.boolean(), now }),
    fc.record({ type: fc.constant("drained" as const), callId: ids, now }),
    fc.record({ type: fc.constant("mute" as const), muted: fc.boolean(), now }),
    fc.record({ type: fc.constant("transfer_begin" as const), now }),
    fc.record({ type: fc.constant("transfer_abort" as const), now }),
    fc.record({ type: fc.constant("transfer" as const), target: fc.constant("carol"), headers: fc.constant({}), now }),
    fc.record({ type: fc.constant("recalled" as const), oldCallId: ids, target: fc.constant("carol"), newCallId: ids,
      headers: fc.constant({}), ringDeadline: now, now }),
    fc.record({ type: fc.constant("tick" as const), now }),
  );

  /** Feeds events to a new account (which the SipAccount object only creates by registering it),
   * skipping refused ones, and hands each accepted transition to `check`. */
  function feed(events: SipEvent[], check: (before: SipAccountState, after: SipAccountState, effects: SipEffect[], history: StatusName[]) => void) {
    let state = newAccount("alice");
    const history: StatusName[] = [];
    for (const e of [{ type: "register", now: 0 } as SipEvent, ...events]) {
      const t = step(state, e);
      if (!t.ok) {
        expect(t.code).toBe(Code.FailedPrecondition);
        expect(t.message).toContain(`state ${state.status}`);
        continue;
      }
      const added = t.effects.flatMap((x) => (x.type === "status" ? [x.entry.type] : []));
      history.push(...added);
      check(state, t.state, t.effects, history);
      state = t.state;
    }
    return history;
  }

  it("appends only statuses the state diagram allows after the previous one", () => {
    fc.assert(fc.property(fc.array(event, { maxLength: 60 }), (events) => {
      const history = feed(events, () => undefined);
      history.forEach((status, i) => {
        const previous = i === 0 ? "none" : history[i - 1];
        expect(NEXT_STATUSES[previous], `${previous} → ${status}`).toContain(status);
      });
    }), { numRuns: 500 });
  });

  it("keeps the state's status equal to the newest status in the history", () => {
    fc.assert(fc.property(fc.array(event, { maxLength: 60 }), (events) => {
      feed(events, (_before, after, _effects, history) => {
        if (history.length > 0) expect(after.status).toBe(history.at(-1));
      });
    }), { numRuns: 300 });
  });

  it("never holds a call without a session", () => {
    fc.assert(fc.property(fc.array(event, { maxLength: 60 }), (events) => {
      feed(events, (_before, after) => {
        if (after.call) expect(after.session).toBeDefined();
      });
    }), { numRuns: 300 });
  });

  it("closes the audio leg of every call it leaves", () => {
    fc.assert(fc.property(fc.array(event, { maxLength: 60 }), (events) => {
      feed(events, (before, after, effects) => {
        if (before.call && after.call?.id !== before.call.id) {
          expect(effects).toContainEqual({ type: "close_leg", callId: before.call.id });
        }
      });
    }), { numRuns: 300 });
  });
});

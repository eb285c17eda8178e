// The rules of one call (model/call-model.ts) without I/O: unit tests for each deadline, and
// property tests over random event sequences for the invariants every door relies on.
import { Code } from "@connectrpc/connect";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  deadlines, nextDeadline, step, type CallEvent, type CallState, type Effect, type Side, type Signal,
} from "../model/call-model";

const T0 = 1_000_000;
const start = (now = T0): CallEvent => ({ type: "start", id: "c1", host: "bob", caller: { identity: "alice", door: "viam" },
  sdp: "offer", disableTrickle: false, deadline: now + 10_000, now });
const cand = (from: Side, n: number, now: number, index?: number): CallEvent =>
  ({ type: "candidate", from, candidate: { candidate: `candidate:${n}` }, now, ...(index !== undefined ? { index } : {}) });

/** Runs events in order; refused ones leave the state as it was (as the object does). */
function run(events: CallEvent[], from?: CallState) {
  let state = from;
  const effects: Effect[] = [];
  const refused: CallEvent[] = [];
  for (const event of events) {
    const t = step(state, event);
    if (!t.ok) { refused.push(event); continue; }
    state = t.state;
    effects.push(...t.effects);
  }
  return { state: state!, effects, refused,
    statuses: effects.flatMap((e) => (e.type === "status" ? [e.status] : [])),
    to: (side: Side) => effects.flatMap((e) => (e.type === "deliver" && e.to === side ? [e.signal] : [])) };
}

const answered = (now = T0): CallEvent[] => [
  start(now),
  { type: "claim", callee: { identity: "bob", door: "voice" }, now: now + 1 },
  { type: "answer", sdp: "answer", now: now + 2 },
];

describe("call-model: deadlines", () => {
  it("fails an unanswered call with deadline_exceeded at its offer deadline, served by the caller's door", () => {
    const { state } = run([start()]);
    expect(deadlines(state).find((d) => d.rule === "offer")).toEqual({ at: T0 + 10_000, rule: "offer", servedBy: "caller" });
    expect(run([{ type: "tick", now: T0 + 9_999 }], state).statuses).toEqual([]);
    const due = run([{ type: "tick", now: T0 + 10_000 }], state);
    expect(due.statuses).toEqual(["timed_out"]);
    expect(due.state.end?.code).toBe(Code.DeadlineExceeded);
  });

  it("ends an answered call whose signals wait uncollected for 60 s", () => {
    const { state } = run([...answered(), { type: "connect", side: "caller", now: T0 + 3 }, cand("caller", 1, T0 + 5)]);
    expect(state.uncollected).toEqual({ callee: T0 });
    expect(run([{ type: "tick", now: T0 + 59_999 }], state).statuses).toEqual([]);
    const due = run([{ type: "tick", now: T0 + 60_000 }], state);
    expect(due.statuses).toEqual(["timed_out"]);
    expect(due.to("caller").at(-1)).toMatchObject({ kind: "error", code: Code.DeadlineExceeded });
  });

  it("forgets the uncollected clock of a side that connects and receives its backlog", () => {
    const { state } = run([...answered(), cand("caller", 1, T0 + 5), { type: "connect", side: "callee", now: T0 + 6 }]);
    expect(state.uncollected?.callee).toBeUndefined();
  });

  it("waits 10 s for the done of a caller whose stream ended cleanly, then frees the callee", () => {
    const { state } = run([...answered(), { type: "connect", side: "caller", now: T0 + 3 }, { type: "connect", side: "callee", now: T0 + 3 },
      { type: "done", from: "callee", now: T0 + 4 }, { type: "disconnect", side: "caller", clean: true, now: T0 + 5 }]);
    expect(deadlines(state).find((d) => d.rule === "caller_done")).toEqual({ at: T0 + 10_005, rule: "caller_done", servedBy: "callee" });
    expect(run([{ type: "tick", now: T0 + 10_004 }], state).statuses).toEqual([]);
    const due = run([{ type: "tick", now: T0 + 10_005 }], state);
    expect(due.statuses).toEqual(["failed"]);
    expect(due.to("callee").at(-1)).toMatchObject({ kind: "error", code: Code.Unavailable });
  });

  it("does not fail the call when the caller's done arrives within the wait", () => {
    const { state } = run([...answered(), { type: "done", from: "callee", now: T0 + 4 },
      { type: "disconnect", side: "caller", clean: true, now: T0 + 5 }, { type: "done", from: "caller", now: T0 + 9_000 },
      { type: "tick", now: T0 + 20_000 }]);
    expect(state.phase).toBe("exchanged");
    expect(deadlines(state).map((d) => d.rule)).toEqual(["max_age"]);
  });

  it("ends a side whose client went away at once, and tells the other side unavailable", () => {
    const r = run([...answered(), { type: "disconnect", side: "callee", clean: false, now: T0 + 5 }]);
    expect(r.statuses.at(-1)).toBe("failed");
    expect(r.to("caller").at(-1)).toMatchObject({ kind: "error", code: Code.Unavailable });
  });

  it("expires an ended call's record an hour after its end", () => {
    const { state } = run([...answered(), { type: "hangup", from: "caller", now: T0 + 5 }]);
    expect(nextDeadline(state)).toBe(T0 + 5 + 3_600_000);
    expect(run([{ type: "tick", now: T0 + 5 + 3_600_000 }], state).effects).toEqual([{ type: "expire" }]);
  });

  it("restores a claim, counters and a done from the sockets after a wake, with their own times", () => {
    const { state } = run([start()]);
    const r = run([{ type: "reload", now: T0 + 50, sockets: {
      caller: { identity: "alice", candidates: 3, doneAt: T0 + 20 },
      callee: { identity: "bob", candidates: 0, doneAt: null, claim: { door: "voice", at: T0 + 10 } },
    } }], state);
    expect(r.state).toMatchObject({ phase: "claimed", callee: { identity: "bob" }, candidates: { caller: 3, callee: 0 },
      done: { caller: true, callee: false }, connected: { caller: true, callee: true } });
    const restored = r.effects.filter((e) => e.type === "status");
    expect(restored).toHaveLength(2);
    expect(restored).toEqual(expect.arrayContaining([
      expect.objectContaining({ status: "claimed", at: T0 + 10 }), expect.objectContaining({ status: "caller_done", at: T0 + 20 }),
    ]));
  });
});

// ---- Properties ---------------------------------------------------------------------------

/** A random life of one call: any event of any party, in any order, at growing times. */
const anyEvent = (i: number): fc.Arbitrary<CallEvent> => {
  const now = T0 + 10 + i * 100;
  return fc.oneof(
    fc.constantFrom<CallEvent>(
      { type: "claim", callee: { identity: "bob", door: "voice" }, now },
      { type: "claim", callee: { identity: "bob", door: "viam" }, now },
      { type: "answer", sdp: "answer", now },
      { type: "done", from: "caller", now }, { type: "done", from: "callee", now },
      { type: "hangup", from: "caller", now }, { type: "hangup", from: "callee", now },
      { type: "fail", from: "callee", code: Code.Internal, message: "x", now },
      { type: "connect", side: "caller", now }, { type: "connect", side: "callee", now },
      { type: "disconnect", side: "caller", clean: true, now }, { type: "disconnect", side: "callee", clean: true, now },
      { type: "disconnect", side: "caller", clean: false, now },
      { type: "tick", now }, { type: "tick", now: now + 10_000 }, { type: "tick", now: now + 60_000 },
    ),
    fc.tuple(fc.constantFrom<Side>("caller", "callee"), fc.nat(20)).map(([from, n]) => cand(from, n, now)),
  );
};
const lives = fc.integer({ min: 0, max: 40 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => anyEvent(i))));

const ends = (statuses: string[]) => statuses.filter((s) => s === "hung_up" || s === "failed" || s === "timed_out");

describe("call-model: properties", () => {
  it("lets exactly one answerer claim a call", () => {
    fc.assert(fc.property(fc.array(fc.constantFrom("voice", "viam", "sip"), { minLength: 1, maxLength: 6 }), (doors) => {
      const r = run([start(), ...doors.map((door, i): CallEvent => ({ type: "claim", callee: { identity: "bob", door: door as "voice" }, now: T0 + i }))]);
      expect(r.statuses.filter((s) => s === "claimed")).toHaveLength(1);
      expect(r.refused).toHaveLength(doors.length - 1);
      expect(r.state.callee?.door).toBe(doors[0]);
    }));
  });

  it("ignores a candidate repeated with its index", () => {
    fc.assert(fc.property(fc.array(fc.nat(5), { maxLength: 30 }), (repeats) => {
      let index = 0;
      const events: CallEvent[] = [...answered()];
      for (const r of repeats) {
        // The candidate numbered `index`, sent again up to 5 times with the same index.
        for (let k = 0; k <= r; k++) events.push(cand("caller", index, T0 + 10 + index, index));
        index++;
      }
      const got = run(events).to("callee").filter((s) => s.kind === "candidate");
      expect(got.map((s) => (s as Extract<Signal, { kind: "candidate" }>).candidate.candidate))
        .toEqual(Array.from({ length: index }, (_, i) => `candidate:${i}`));
    }));
  });

  it("delivers every accepted signal to the other side once, in the order it was sent", () => {
    fc.assert(fc.property(lives, (events) => {
      const accepted: { from: Side; n: number }[] = [];
      let state: CallState | undefined;
      const delivered: Record<Side, Signal[]> = { caller: [], callee: [] };
      for (const event of [start(), ...events]) {
        const t = step(state, event);
        if (!t.ok) continue;
        if (event.type === "candidate" && t.effects.some((e) => e.type === "deliver")) {
          accepted.push({ from: event.from, n: Number(event.candidate.candidate.split(":")[1]) });
        }
        for (const e of t.effects) if (e.type === "deliver") delivered[e.to].push(e.signal);
        state = t.state;
      }
      for (const side of ["caller", "callee"] as const) {
        const from = side === "caller" ? "callee" : "caller";
        const got = delivered[side].flatMap((s) => (s.kind === "candidate" ? [Number(s.candidate.candidate.split(":")[1])] : []));
        expect(got).toEqual(accepted.filter((a) => a.from === from).map((a) => a.n));
      }
      expect(delivered.callee.filter((s) => s.kind === "offer")).toHaveLength(1);
      expect(delivered.caller.filter((s) => s.kind === "answer").length).toBeLessThanOrEqual(1);
    }));
  });

  it("ends every call at most once, and every call that is not exchanged ends once its deadlines have passed", () => {
    fc.assert(fc.property(lives, (events) => {
      const r = run([start(), ...events]);
      expect(ends(r.statuses).length).toBeLessThanOrEqual(1);
      if (r.state.phase === "ended") expect(ends(r.statuses)).toHaveLength(1);
      // Time runs on with nobody connected (everyone went away): the call ends, or it finished its
      // exchange and only expires.
      const later = run([{ type: "disconnect", side: "caller", clean: true, now: T0 + 1e7 },
        { type: "disconnect", side: "callee", clean: true, now: T0 + 1e7 },
        { type: "tick", now: T0 + 2e7 }, { type: "tick", now: T0 + 1e8 }], r.state);
      const all = [...r.statuses, ...later.statuses];
      if (later.state.phase !== "exchanged") expect(ends(all)).toHaveLength(1);
      else expect(later.effects).toContainEqual({ type: "expire" });
    }));
  });

  it("loses no deadline across a reload: the stored state and the sockets' facts give the same deadlines", () => {
    fc.assert(fc.property(lives, (events) => {
      const r = run([start(), ...events]);
      const connected = r.state.connected ?? {};
      // What a wake sees: the stored state, plus what each still-open socket carries.
      const sockets = Object.fromEntries((["caller", "callee"] as const).filter((s) => connected[s]).map((side) => [side, {
        identity: side === "caller" ? "alice" : "bob", candidates: r.state.candidates[side], doneAt: r.state.done[side] ? T0 : null,
        ...(side === "callee" && r.state.callerLeftAt !== undefined ? { callerLeftAt: r.state.callerLeftAt } : {}),
      }]));
      const reloaded = run([{ type: "reload", sockets, now: T0 + 9e6 }], r.state);
      expect(deadlines(reloaded.state)).toEqual(deadlines(r.state));
    }));
  });

  it("frees the answerer of a caller that went away without its done within 10 s (the caller-done wait)", () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 60_000 }), fc.boolean(), (leftAfter, calleeDone) => {
      // A caller on a socket from its start (a Viam Call stream), a callee on one from its claim.
      const base = [start(), { type: "connect", side: "caller", now: T0 } as CallEvent, ...answered().slice(1),
        { type: "connect", side: "callee", now: T0 + 3 } as CallEvent,
        ...(calleeDone ? [{ type: "done", from: "callee", now: T0 + 4 } as CallEvent] : [])];
      const leftAt = T0 + 5 + leftAfter;
      const r = run([...base, { type: "disconnect", side: "caller", clean: true, now: leftAt },
        { type: "tick", now: leftAt + 10_000 }]);
      expect(r.state.phase).toBe("ended");
      expect(r.to("callee").at(-1)).toMatchObject({ kind: "error", code: Code.Unavailable });
    }));
  });
});

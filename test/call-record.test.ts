// The call record's pure rules (durable-objects/call-record.ts): which changes the call object
// writes, and how many signals may wait for a side with no socket.
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { backlogRefusal, mustWrite, newRecord } from "../durable-objects/call-record";
import { step, type CallEvent, type CallState, type Side } from "../model/call-model";
import { MAX_QUEUED_SIGNALS } from "../model/limits";

const now = 1_000_000;

/** The state after `events` from nothing, failing the test on a refused event. */
function after(...events: CallEvent[]): CallState {
  let state: CallState | undefined;
  for (const event of events) {
    const next = step(state, event);
    if (!next.ok) throw new Error(`${event.type} refused: ${next.message}`);
    state = next.state;
  }
  return state!;
}

const start: CallEvent = { type: "start", id: "c1", host: "bob", caller: { identity: "alice", door: "viam" }, sdp: "offer",
  disableTrickle: false, deadline: now + 10_000, now };
const claim: CallEvent = { type: "claim", callee: { identity: "bob", door: "voice" }, now };
const answer: CallEvent = { type: "answer", sdp: "answer", now };
const sockets = (...open: Side[]) => (side: Side) => open.includes(side);

/** Whether applying `event` to the state after `before` must be written. */
function writes(before: CallEvent[], event: CallEvent, open: (side: Side) => boolean, backlogged = false): boolean {
  const prev = before.length ? after(...before) : undefined;
  const next = step(prev, event);
  if (!next.ok) throw new Error(`${event.type} refused: ${next.message}`);
  return mustWrite(event, prev, next.state, open, backlogged);
}

describe("mustWrite: only what no socket carries is written", () => {
  it("writes the start and the answer, phases only storage keeps", () => {
    expect(writes([], start, sockets("caller", "callee"))).toBe(true);
    expect(writes([start, claim], answer, sockets("caller", "callee"))).toBe(true);
  });

  it("leaves a claim to the callee's socket, and writes it when the callee has none", () => {
    expect(writes([start], claim, sockets("caller", "callee"))).toBe(false);
    expect(writes([start], claim, sockets("caller"))).toBe(true);
  });

  it("leaves a candidate to its sender's socket, and writes it when the sender has none", () => {
    const candidate: CallEvent = { type: "candidate", from: "caller", candidate: { candidate: "candidate:1" }, now };
    expect(writes([start, claim, answer], candidate, sockets("caller"))).toBe(false);
    expect(writes([start, claim, answer], candidate, sockets("callee"))).toBe(true);
  });

  it("writes the done that completes the exchange, but not one that completes nothing", () => {
    const calleeDone: CallEvent = { type: "done", from: "callee", now };
    const callerDone: CallEvent = { type: "done", from: "caller", now };
    expect(writes([start, claim, answer], calleeDone, sockets("caller", "callee"))).toBe(false);
    expect(writes([start, claim, answer, calleeDone], callerDone, sockets("caller", "callee"))).toBe(true);
  });

  it("never writes presence alone, unless a signal went into a backlog with it", () => {
    const tick: CallEvent = { type: "tick", now: now + 1 };
    expect(writes([start, claim], tick, sockets("caller", "callee"))).toBe(false);
    expect(writes([start, claim], tick, sockets("caller", "callee"), true)).toBe(true);
  });
});

describe("backlogRefusal: at most MAX_QUEUED_SIGNALS wait for a side with no socket", () => {
  const record = newRecord(after(start, claim, answer));
  record.backlog.callee = Array.from({ length: MAX_QUEUED_SIGNALS }, (_, i) =>
    ({ seq: i + 1, signal: { kind: "candidate", candidate: { candidate: `candidate:${i}` } }, at: now }));
  const one = [{ type: "deliver" as const, to: "callee" as const, signal: { kind: "done" as const } }];

  it("refuses one more signal for the callee while it has no socket, with resource_exhausted", () => {
    expect(backlogRefusal(record, one, sockets("caller"))).toMatchObject({ ok: false, code: Code.ResourceExhausted });
  });

  it("lets it through once the callee has a socket, or once its backlog was read", () => {
    expect(backlogRefusal(record, one, sockets("caller", "callee"))).toBeUndefined();
    expect(backlogRefusal({ ...record, read: { ...record.read, callee: MAX_QUEUED_SIGNALS + 1 } }, one, sockets("caller"))).toBeUndefined();
  });
});

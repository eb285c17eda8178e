// The rules of one call, as a pure transition function: no I/O, no clock, no storage.
// The call Durable Object loads the state, calls `step`, persists the result and performs the
// effects. Every door (Viam, Voice, SIP, audio, LiveKit) drives a call through these events,
// which is what lets a call started through one door be answered through another.
//
// Time is an event too: every timer of a call (the offer deadline, the wait for a caller's done,
// signals nobody collects, the maximum age, the retention of a finished call) is a deadline of the
// state (`deadlines`), and a `tick` at or after it applies whichever rules are due. The object
// serves the deadlines with its alarm, or lets a door that follows the call serve one with its
// own clock (`servedBy`): a waiting Worker costs nothing, an alarm costs a write.
import { Code } from "@connectrpc/connect";
import {
  CALL_MAX_AGE_MS, CALL_RETENTION_MS, CALLER_DONE_WAIT_MS, MAX_CANDIDATES_PER_SIDE, SIGNAL_TTL_MS,
} from "./limits";
import { failure, type Failure } from "./result";

export type Side = "caller" | "callee";
/** Both sides, caller first. */
export const SIDES: readonly Side[] = ["caller", "callee"];
export type Door = "viam" | "voice" | "sip" | "audio" | "livekit";

/** An ICE candidate as WebRTC's RTCIceCandidateInit; strings pass through unchanged. */
export interface IceCandidate {
  candidate: string;
  sdpMid?: string;
  sdpMLineIndex?: number;
  usernameFragment?: string;
}

/** What one side receives from the other, in order. */
export type Signal =
  /** `caller`: the identity that placed the call (never a credential: see worker/caller-proof.ts). */
  | { kind: "offer"; sdp: string; disableTrickle: boolean; deadline: number; caller: string }
  | { kind: "answer"; sdp: string }
  | { kind: "candidate"; candidate: IceCandidate }
  /** The other side has no more candidates to send. */
  | { kind: "done" }
  /** The call failed; `code` is a Connect/gRPC code so a door can pass it through unchanged. */
  | { kind: "error"; code: Code; message: string };

export type Phase = "offered" | "claimed" | "answered" | "exchanged" | "ended";

export interface Party {
  identity: string;
  door: Door;
}

export interface CallState {
  id: string;
  /** The identity the call is for (Viam's rpc-host). */
  host: string;
  caller: Party;
  callee?: Party;
  phase: Phase;
  offer: string;
  answer?: string;
  disableTrickle: boolean;
  createdAt: number;
  /** Until the answer arrives, the call fails at this time with deadline_exceeded. */
  offerDeadline: number;
  candidates: Record<Side, number>;
  done: Record<Side, boolean>;
  end?: { code: Code | null; message: string; at: number; by: Side | "server" };
  /** Door-specific data that travels with the call, opaque to these rules (a SIP call's headers). */
  meta?: Record<string, string>;
  /** Which sides follow the call on a socket now (the object tells: `connect`, `disconnect`). A
   * signal for a side that is not connected waits in its backlog. */
  connected?: Partial<Record<Side, boolean>>;
  /** When the oldest signal still waiting for a side without a socket was queued. */
  uncollected?: Partial<Record<Side, number>>;
  /** The caller's stream ended cleanly before its done (a Viam Call stream closes once the callee
   * is done; the SDK's CallUpdate(done) follows): its done must come within CALLER_DONE_WAIT_MS. */
  callerLeftAt?: number;
}

/** What a side's socket carries that the stored state may not hold yet (restored after a wake). */
export interface SocketFacts {
  identity: string;
  candidates: number;
  doneAt: number | null;
  /** The callee's socket that took the call: its door and when. */
  claim?: { door: Door; at: number };
  /** The caller's clean leave, kept on the callee's socket, which serves its deadline. */
  callerLeftAt?: number;
}

export type CallEvent =
  | { type: "start"; id: string; host: string; caller: Party; sdp: string; disableTrickle: boolean;
      deadline: number; now: number; meta?: Record<string, string> }
  | { type: "claim"; callee: Party; now: number }
  | { type: "answer"; sdp: string; now: number }
  /** `index`: how many candidates `from` had sent before this one, when its door counts them. A
   * door that retries an RPC after the call object was reset under it passes it, so a candidate
   * that was applied before the reset is not queued twice. */
  | { type: "candidate"; from: Side; candidate: IceCandidate; now: number; index?: number }
  | { type: "done"; from: Side; now: number }
  | { type: "fail"; from: Side; code: Code; message: string; now: number }
  | { type: "hangup"; from: Side; now: number }
  | { type: "timeout"; now: number }
  /** The server gives up on the call (no answerer online, maximum age) with its own code. */
  | { type: "reject"; code: Code; message: string; now: number }
  /** A socket of `side` follows the call: its backlog is handed to it. */
  | { type: "connect"; side: Side; now: number }
  /** The socket of `side` closed: `clean` when its door finished (1000), else its client went away. */
  | { type: "disconnect"; side: Side; clean: boolean; now: number; unread?: boolean }
  /** The object woke (or was reset): the sockets still open, with what each carries. */
  | { type: "reload"; sockets: Partial<Record<Side, SocketFacts>>; now: number }
  /** The clock reached one of `deadlines(state)`: apply what is due. */
  | { type: "tick"; now: number };

/** Names of the entries in a call's status history. */
export type CallStatus =
  | "offered" | "claimed" | "answered" | "caller_done" | "callee_done" | "exchanged"
  | "failed" | "hung_up" | "timed_out";

export type Effect =
  | { type: "deliver"; to: Side; signal: Signal }
  /** `at`: when it happened, if not at the event's `now` (a done restored from a socket). */
  | { type: "status"; status: CallStatus; side?: Side; detail?: string; at?: number }
  /** The call's record has outlived its use: the object deletes it. */
  | { type: "expire" };

/** A time at which `tick` has something to do; `servedBy`: a connected side's door may serve it
 * with its own clock instead of the object's alarm. */
export interface Deadline {
  at: number;
  rule: "offer" | "caller_done" | "uncollected" | "max_age" | "retention";
  servedBy?: Side;
}

export type Transition = { ok: true; state: CallState; effects: Effect[] } | Failure;

const other = (side: Side): Side => (side === "caller" ? "callee" : "caller");

/** Whether `side` will receive nothing more (its stream may end once its queue is drained). */
export function inboundClosed(state: CallState, side: Side): boolean {
  return state.phase === "ended" || state.done[other(side)];
}

export function step(state: CallState | undefined, event: CallEvent): Transition {
  if (state && (event.type === "connect" || event.type === "disconnect" || event.type === "reload" || event.type === "tick")) {
    return presence(state, event);
  }
  if (event.type === "connect" || event.type === "disconnect" || event.type === "reload" || event.type === "tick") {
    return failure(Code.NotFound, "no such call");
  }
  const stepped = rules(state, event);
  return stepped.ok ? { ...stepped, state: queueFor(stepped.state, stepped.effects, event.now) } : stepped;
}

/** The times at which `tick` has something to do, soonest first. */
export function deadlines(state: CallState): Deadline[] {
  const out: Deadline[] = [];
  if (state.phase === "ended") {
    out.push({ at: state.end!.at + CALL_RETENTION_MS, rule: "retention" });
  } else {
    out.push({ at: state.createdAt + CALL_MAX_AGE_MS, rule: "max_age" });
    if (awaitsAnswer(state)) out.push({ at: state.offerDeadline, rule: "offer", servedBy: "caller" });
    else if (state.phase !== "exchanged") {
      for (const side of SIDES) {
        const since = state.uncollected?.[side];
        if (since !== undefined) out.push({ at: since + SIGNAL_TTL_MS, rule: "uncollected" });
      }
    }
    if (state.callerLeftAt !== undefined) out.push({ at: state.callerLeftAt + CALLER_DONE_WAIT_MS, rule: "caller_done", servedBy: "callee" });
  }
  return out.sort((a, b) => a.at - b.at);
}

/** The soonest deadline, or undefined when the call waits on nothing. */
export function nextDeadline(state: CallState): number | undefined {
  return deadlines(state)[0]?.at;
}

/** Before the answer: the offer deadline runs. */
export function awaitsAnswer(call: CallState): boolean {
  return call.phase === "offered" || call.phase === "claimed";
}


/** A signal for a side without a socket starts that side's uncollected clock. */
function queueFor(state: CallState, effects: Effect[], now: number): CallState {
  let uncollected = state.uncollected;
  for (const e of effects) {
    if (e.type !== "deliver" || state.connected?.[e.to] || uncollected?.[e.to] !== undefined) continue;
    uncollected = { ...uncollected, [e.to]: now };
  }
  return uncollected === state.uncollected ? state : { ...state, uncollected };
}

/** Who follows the call on a socket, and what the clock brings. */
function presence(state: CallState, event: Extract<CallEvent, { type: "connect" | "disconnect" | "reload" | "tick" }>): Transition {
  switch (event.type) {
    case "connect": {
      const { [event.side]: _collected, ...uncollected } = state.uncollected ?? {};
      const back = event.side === "caller" ? { callerLeftAt: undefined } : {};
      return ok(clean({ ...state, ...back, connected: { ...state.connected, [event.side]: true }, uncollected }));
    }
    case "disconnect": {
      const next = clean({ ...state, connected: { ...state.connected, [event.side]: false },
        ...(event.unread && state.uncollected?.[event.side] === undefined
          ? { uncollected: { ...state.uncollected, [event.side]: event.now } } : {}) });
      if (state.phase === "ended") return ok(next);
      // The door's client went away: nobody will follow this side again.
      if (!event.clean) return end(next, event.side, Code.Unavailable, `the ${event.side} disconnected`, event.now, "failed");
      if (event.side === "caller" && !state.done.caller) return ok({ ...next, callerLeftAt: event.now });
      return ok(next);
    }
    case "reload": {
      let next: CallState = { ...state, connected: {} };
      const effects: Effect[] = [];
      for (const side of SIDES) {
        const facts = event.sockets[side];
        if (!facts) continue;
        next = { ...next, connected: { ...next.connected, [side]: true } };
        if (facts.claim && side === "callee" && next.phase === "offered") {
          const claimed = rules(next, { type: "claim", callee: { identity: facts.identity, door: facts.claim.door }, now: facts.claim.at });
          if (claimed.ok) {
            next = claimed.state;
            effects.push(...claimed.effects.map((e) => (e.type === "status" ? { ...e, at: facts.claim!.at } : e)));
          }
        }
        next = { ...next, candidates: { ...next.candidates, [side]: Math.max(next.candidates[side], facts.candidates) } };
        if (facts.doneAt !== null && !next.done[side]) {
          next = { ...next, done: { ...next.done, [side]: true } };
          effects.push({ type: "status", status: side === "caller" ? "caller_done" : "callee_done", side, at: facts.doneAt });
        }
        if (side === "callee" && facts.callerLeftAt !== undefined && !next.done.caller && !event.sockets.caller) {
          next = { ...next, callerLeftAt: facts.callerLeftAt };
        }
      }
      // A side back on a socket gets its backlog as it connects: nothing waits uncollected for it.
      const uncollected = Object.fromEntries(Object.entries(next.uncollected ?? {})
        .filter(([side]) => !next.connected?.[side as Side])) as Partial<Record<Side, number>>;
      return { ok: true, state: clean({ ...next, uncollected }), effects };
    }
    case "tick":
      return tick(state, event.now);
  }
}

/** Applies the rules whose deadline has passed at `now`, the earliest first. */
function tick(state: CallState, now: number): Transition {
  for (const due of deadlines(state)) {
    if (due.at > now) break;
    switch (due.rule) {
      case "retention":
        return { ok: true, state, effects: [{ type: "expire" }] };
      case "max_age":
        // Signaling finished long ago and nothing more can happen to it: no end to record first.
        if (state.phase === "exchanged") return { ok: true, state, effects: [{ type: "expire" }] };
        return end(state, "server", Code.DeadlineExceeded, "call exceeded its maximum age", now, "failed");
      case "offer":
      case "uncollected":
        // Before the exchange completes, a signal nobody collected means its party is gone: the
        // call ends so the other side is told instead of waiting.
        return rules(state, { type: "timeout", now });
      case "caller_done":
        if (state.done.caller || state.connected?.caller) continue;
        return end(state, "caller", Code.Unavailable, "the caller left without finishing the exchange", now, "failed");
    }
  }
  return ok(state);
}

/** Drops empty optional fields, so a state compares and stores the same however it was reached. */
function clean(state: CallState): CallState {
  const next = { ...state };
  if (next.callerLeftAt === undefined) delete next.callerLeftAt;
  if (next.uncollected && Object.keys(next.uncollected).length === 0) delete next.uncollected;
  return next;
}

function rules(state: CallState | undefined, event: Exclude<CallEvent, { type: "connect" | "disconnect" | "reload" | "tick" }>): Transition {
  if (event.type === "start") {
    if (state) return failure(Code.AlreadyExists, `call ${state.id} already exists`);
    const next: CallState = {
      id: event.id, host: event.host, caller: event.caller, phase: "offered", offer: event.sdp,
      disableTrickle: event.disableTrickle, createdAt: event.now, offerDeadline: event.deadline,
      candidates: { caller: 0, callee: 0 }, done: { caller: false, callee: false },
      ...(event.meta ? { meta: event.meta } : {}),
    };
    const offer: Signal = { kind: "offer", sdp: event.sdp, disableTrickle: event.disableTrickle,
      deadline: event.deadline, caller: event.caller.identity };
    return { ok: true, state: next, effects: [
      { type: "deliver", to: "callee", signal: offer },
      { type: "status", status: "offered", side: "caller", detail: `${event.caller.door}:${event.caller.identity}` },
    ] };
  }
  if (!state) return failure(Code.NotFound, "no such call");
  if (state.phase === "ended") {
    // Late trickle or done after the end is harmless (the Viam SDK sends done late): accept quietly.
    if (event.type === "done" || event.type === "candidate" || event.type === "hangup" || event.type === "timeout" || event.type === "reject") {
      return { ok: true, state, effects: [] };
    }
    return failure(Code.FailedPrecondition, `call ${state.id} has ended: ${state.end?.message ?? ""}`.trim());
  }

  switch (event.type) {
    case "claim": {
      if (state.phase !== "offered") {
        return failure(Code.FailedPrecondition, `call ${state.id} was already taken by another answerer`);
      }
      return ok({ ...state, phase: "claimed", callee: event.callee },
        { type: "status", status: "claimed", side: "callee", detail: `${event.callee.door}:${event.callee.identity}` });
    }
    case "answer": {
      if (state.phase === "offered") return failure(Code.FailedPrecondition, "answer before the offer was taken");
      // The same answer again is a door retrying after a reset that struck after it was applied.
      if (state.phase !== "claimed" && state.answer === event.sdp) return { ok: true, state, effects: [] };
      if (state.phase !== "claimed") return failure(Code.FailedPrecondition, `call ${state.id} is already answered`);
      return ok({ ...state, phase: "answered", answer: event.sdp },
        { type: "deliver", to: "caller", signal: { kind: "answer", sdp: event.sdp } },
        { type: "status", status: "answered", side: "callee" });
    }
    case "candidate": {
      if (event.index !== undefined && event.index < state.candidates[event.from]) return { ok: true, state, effects: [] };
      if (event.candidate.candidate === "") return failure(Code.InvalidArgument, "empty ICE candidate");
      if (state.done[event.from]) return failure(Code.FailedPrecondition, `${event.from} already sent done`);
      if (event.from === "callee" && state.phase !== "answered" && state.phase !== "exchanged") {
        return failure(Code.FailedPrecondition, "callee candidate before its answer");
      }
      if (state.candidates[event.from] >= MAX_CANDIDATES_PER_SIDE) {
        return failure(Code.ResourceExhausted, `more than ${MAX_CANDIDATES_PER_SIDE} candidates from the ${event.from}`);
      }
      const candidates = { ...state.candidates, [event.from]: state.candidates[event.from] + 1 };
      return ok({ ...state, candidates },
        { type: "deliver", to: other(event.from), signal: { kind: "candidate", candidate: event.candidate } });
    }
    case "done": {
      if (state.done[event.from]) return { ok: true, state, effects: [] };
      if (event.from === "callee" && state.phase !== "answered") {
        return failure(Code.FailedPrecondition, "callee done before its answer");
      }
      const done = { ...state.done, [event.from]: true };
      const exchanged = done.caller && done.callee && state.phase === "answered";
      const waits = event.from === "caller" ? { callerLeftAt: undefined } : {};
      const effects: Effect[] = [
        { type: "deliver", to: other(event.from), signal: { kind: "done" } },
        { type: "status", status: event.from === "caller" ? "caller_done" : "callee_done", side: event.from },
      ];
      if (exchanged) effects.push({ type: "status", status: "exchanged" });
      return { ok: true, state: clean({ ...state, ...waits, done, phase: exchanged ? "exchanged" : state.phase }), effects };
    }
    case "fail":
      return end(state, event.from, event.code, event.message, event.now, "failed");
    case "hangup":
      return end(state, event.from, null, `${event.from} hung up`, event.now, "hung_up");
    case "reject":
      return end(state, "server", event.code, event.message, event.now, "failed");
    case "timeout": {
      if (state.phase === "offered" || state.phase === "claimed") {
        return end(state, "server", Code.DeadlineExceeded,
          `host ${state.host} did not answer within the offer deadline`, event.now, "timed_out");
      }
      return end(state, "server", Code.DeadlineExceeded, "signals were not collected in time", event.now, "timed_out");
    }
  }
}

function ok(state: CallState, ...effects: Effect[]): Transition {
  return { ok: true, state, effects };
}

/** Ends the call; each side still connected is told why (a hang-up ends streams with OK). */
function end(state: CallState, by: Side | "server", code: Code | null, message: string, now: number,
  status: CallStatus): Transition {
  const effects: Effect[] = [];
  if (code !== null) {
    for (const to of ["caller", "callee"] as const) {
      if (to === by) continue;
      if (to === "callee" && !state.callee) continue;
      effects.push({ type: "deliver", to, signal: { kind: "error", code, message } });
    }
  }
  effects.push({ type: "status", status, side: by === "server" ? undefined : by, detail: message });
  const { callerLeftAt: _left, uncollected: _uncollected, ...rest } = state;
  return { ok: true, state: { ...rest, phase: "ended", end: { code, message, at: now, by } }, effects };
}

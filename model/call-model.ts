// The rules of one call, as a pure transition function: no I/O, no clock, no storage.
// The call Durable Object loads the state, calls `step`, persists the result and performs the
// effects. Every door (Viam, Voice, SIP, audio, LiveKit) drives a call through these events,
// which is what lets a call started through one door be answered through another.
import { Code } from "@connectrpc/connect";
import { MAX_CANDIDATES_PER_SIDE } from "./limits";
import { failure, type Failure } from "./result";

export type Side = "caller" | "callee";
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
  | { type: "reject"; code: Code; message: string; now: number };

/** Names of the entries in a call's status history. */
export type CallStatus =
  | "offered" | "claimed" | "answered" | "caller_done" | "callee_done" | "exchanged"
  | "failed" | "hung_up" | "timed_out";

export type Effect =
  | { type: "deliver"; to: Side; signal: Signal }
  | { type: "status"; status: CallStatus; side?: Side; detail?: string };

export type Transition = { ok: true; state: CallState; effects: Effect[] } | Failure;

const other = (side: Side): Side => (side === "caller" ? "callee" : "caller");

/** Whether `side` will receive nothing more (its stream may end once its queue is drained). */
export function inboundClosed(state: CallState, side: Side): boolean {
  return state.phase === "ended" || state.done[other(side)];
}

export function step(state: CallState | undefined, event: CallEvent): Transition {
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
      const effects: Effect[] = [
        { type: "deliver", to: other(event.from), signal: { kind: "done" } },
        { type: "status", status: event.from === "caller" ? "caller_done" : "callee_done", side: event.from },
      ];
      if (exchanged) effects.push({ type: "status", status: "exchanged" });
      return { ok: true, state: { ...state, done, phase: exchanged ? "exchanged" : state.phase }, effects };
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
  return { ok: true, state: { ...state, phase: "ended", end: { code, message, at: now, by } }, effects };
}

// The rules of one SIP account (seed 001, `ondewo.sip.Sip`) as a pure transition function: no
// I/O, no clock, no storage. The SipAccount object loads the state, calls `step`, appends the
// statuses it returns to the account's history, and performs the other effects (place or end the
// call in the shared call model, open or close the account's audio leg).
//
// Decisions the seed leaves open (also in docs/sip.md's state diagram, built from NEXT_STATUSES):
// - Every transition appends one status; GetSipStatus is always the newest entry of the history.
// - A call that ends before it connected ends in `*_call_failed` when it failed (ring timeout,
//   callee offline or declined, an error) and in `*_call_finished` when a party hung up; a
//   connected call always ends in `*_call_finished`.
// - After `*_call_finished` / `*_call_failed` the session is ready for the next call; no separate
//   `ready` status is appended.
// - `callee_id` is the other party of the call: the callee of an outgoing call, the caller of an
//   incoming one. `transfer_call_id` is the transfer target on statuses a transfer caused.
// - Mute and UnMute repeat the current status with the `muted` header changed (a self-loop), so
//   the state is visible in both GetSipStatus and the history. Muting is per call: calls start
//   unmuted.
// - A hard hangup ends the call at once, cutting queued WAV audio; a soft hangup lets queued audio
//   finish (bounded by SIP_SOFT_HANGUP_MAX_MS) and then ends the call.
import { Code } from "@connectrpc/connect";
import { SIP_SOFT_HANGUP_MAX_MS } from "./limits";
import type { Side } from "./call-model";
import { failure, type Failure } from "./result";

/** The wire's `SipStatus.StatusType` names, in value order (no_session = 0 … outgoing_call_finished = 13). */
export const STATUS_NAMES = [
  "no_session", "registered", "ready", "incoming_call_initiated", "outgoing_call_initiated",
  "outgoing_call_connected", "incoming_call_connected", "transfer_call_initiated", "soft_hangup_initiated",
  "hard_hangup_initiated", "incoming_call_failed", "outgoing_call_failed", "incoming_call_finished",
  "outgoing_call_finished",
] as const;
export type StatusName = (typeof STATUS_NAMES)[number];

/** Headers the server sets on call statuses; a client may not pass them itself. */
export const SERVER_HEADERS = ["call-id", "audio-url", "muted", "reason"] as const;

export interface SipStatusEntry {
  at: number;
  type: StatusName;
  calleeId: string;
  transferCallId: string;
  headers: Record<string, string>;
}

export type CallDirection = "outgoing" | "incoming";

/** `transferring`: the account asked the far party to re-call the transfer target and waits for
 * its answer; `hanging_up`: a soft hangup waits for queued audio to finish. */
export type SipCallPhase = "ringing" | "connected" | "transferring" | "hanging_up";

export interface SipCall {
  id: string;
  direction: CallDirection;
  /** The other party: the callee of an outgoing call, the caller of an incoming one. */
  peer: string;
  phase: SipCallPhase;
  /** The headers every status of the call shows: the client's, plus call-id and audio-url. */
  headers: Record<string, string>;
  /** Set on a call placed because of a transfer: its target. */
  transferId?: string;
  muted: boolean;
  /** Not connected by then, the call fails (ring timeout). */
  ringDeadline: number;
  /** An incoming call with auto-answer is answered at this time. */
  answerAt?: number;
  /** The account is answering (claiming the call); the alarm must not answer twice. */
  answering?: boolean;
  /** A soft hangup stops waiting for queued audio at this time. */
  hangupBy?: number;
}

export interface SipSession {
  /** 0: incoming calls ring until answered through another door or until the ring timeout. */
  autoAnswerSeconds: number;
  /** Where the audio of this account's calls flows: the relay's URL up to the room name. */
  audioBase: string;
}

export interface SipAccountState {
  account: string;
  /** The newest status in the history. */
  status: StatusName;
  session?: SipSession;
  call?: SipCall;
}

export type SipEvent =
  | { type: "register"; now: number }
  | { type: "start_session"; autoAnswerSeconds: number; audioBase: string; now: number }
  | { type: "end_session"; now: number }
  /** StartCall: the account calls `callee`. */
  | { type: "dial"; callId: string; callee: string; headers: Record<string, string>; ringDeadline: number; now: number }
  /** A call for this account was queued at its host object. */
  | { type: "ring"; callId: string; caller: string; headers: Record<string, string>; ringDeadline: number; now: number }
  /** The call model says the call was answered (by this account or through another door). */
  | { type: "connected"; callId: string; now: number }
  /** The call model says the call ended; `failed` when it ended with an error code. */
  | { type: "ended"; callId: string; failed: boolean; reason: string; now: number }
  | { type: "hangup"; hard: boolean; now: number }
  /** A soft hangup's queued audio has finished playing. */
  | { type: "drained"; callId: string; now: number }
  | { type: "mute"; muted: boolean; now: number }
  | { type: "transfer_begin"; now: number }
  | { type: "transfer_abort"; now: number }
  | { type: "transfer"; target: string; headers: Record<string, string>; now: number }
  /** The far party of a transfer: leave call `oldCallId` and call `target` as `newCallId`. */
  | { type: "recalled"; oldCallId: string; target: string; newCallId: string; headers: Record<string, string>;
      ringDeadline: number; now: number }
  /** The account's alarm: ring timeout, auto-answer, soft-hangup limit. */
  | { type: "tick"; now: number };

export type SipEffect =
  | { type: "status"; entry: SipStatusEntry }
  /** Create the call in the shared call model; `meta` travels with it to the callee. */
  | { type: "start_call"; callId: string; callee: string; meta: Record<string, string>; ringDeadline: number }
  | { type: "answer_call"; callId: string }
  /** End this account's side of the call: a hang-up (`code` null) or a failure the other side is told of. */
  | { type: "end_call"; callId: string; side: Side; code: Code | null; reason: string; claimFirst: boolean }
  /** The account's seat in the call's audio room; the caller's leg dials the callee. */
  | { type: "open_leg"; callId: string; peer: string; dials: boolean; dialUntil: number }
  | { type: "close_leg"; callId: string }
  | { type: "stop_playback" }
  | { type: "drain"; callId: string }
  | { type: "set_muted"; muted: boolean };

export type SipTransition = { ok: true; state: SipAccountState; effects: SipEffect[] } | Failure;

/** Which status may follow which: the state diagram of SipStatus. `none` is a new account. */
export const NEXT_STATUSES: Readonly<Record<StatusName | "none", readonly StatusName[]>> = {
  none: ["registered"],
  registered: ["registered", "ready"],
  no_session: ["registered", "ready"],
  ready: ["no_session", "outgoing_call_initiated", "incoming_call_initiated"],
  outgoing_call_initiated: ["outgoing_call_initiated", "outgoing_call_connected", "outgoing_call_failed",
    "outgoing_call_finished", "hard_hangup_initiated", "soft_hangup_initiated"],
  incoming_call_initiated: ["incoming_call_initiated", "incoming_call_connected", "incoming_call_failed",
    "incoming_call_finished", "hard_hangup_initiated", "soft_hangup_initiated"],
  outgoing_call_connected: ["outgoing_call_connected", "outgoing_call_finished", "hard_hangup_initiated",
    "soft_hangup_initiated", "transfer_call_initiated"],
  incoming_call_connected: ["incoming_call_connected", "incoming_call_finished", "hard_hangup_initiated",
    "soft_hangup_initiated", "transfer_call_initiated"],
  transfer_call_initiated: ["outgoing_call_finished", "incoming_call_finished"],
  soft_hangup_initiated: ["outgoing_call_finished", "incoming_call_finished", "hard_hangup_initiated"],
  hard_hangup_initiated: ["outgoing_call_finished", "incoming_call_finished"],
  outgoing_call_failed: ["no_session", "outgoing_call_initiated", "incoming_call_initiated"],
  incoming_call_failed: ["no_session", "outgoing_call_initiated", "incoming_call_initiated"],
  outgoing_call_finished: ["no_session", "outgoing_call_initiated", "incoming_call_initiated"],
  incoming_call_finished: ["no_session", "outgoing_call_initiated", "incoming_call_initiated"],
};

/** The state of an account that has just been created, before its first `register`. */
export function newAccount(account: string): SipAccountState {
  return { account, status: "no_session" };
}

/** When the account's alarm must next run for its call, if at all. */
export function nextDeadline(state: SipAccountState): number | undefined {
  const call = state.call;
  if (!call) return undefined;
  if (call.phase === "hanging_up") return call.hangupBy;
  if (call.phase !== "ringing") return undefined;
  return call.answerAt !== undefined && !call.answering ? Math.min(call.answerAt, call.ringDeadline) : call.ringDeadline;
}

/** The account takes calls (stands as an answerer at its host object): a session and no call. */
export function isAvailable(state: SipAccountState | undefined): boolean {
  return state?.session !== undefined && state.call === undefined;
}

export function step(state: SipAccountState, event: SipEvent): SipTransition {
  const t = new Transition(state);
  const call = state.call;
  switch (event.type) {
    case "register":
      if (state.session) return precondition(state, "RegisterAccount on an existing account needs its session ended (EndSession)");
      return t.status(event.now, "registered").done();

    case "start_session":
      if (state.session) return precondition(state, "StartSession needs no session to be active");
      t.state = { ...t.state, session: { autoAnswerSeconds: event.autoAnswerSeconds, audioBase: event.audioBase } };
      return t.status(event.now, "ready").done();

    case "end_session":
      if (!state.session) return precondition(state, "EndSession needs a session");
      if (call) hangUpNow(t, call, true, event.now);
      t.state = { account: state.account, status: t.state.status };
      return t.status(event.now, "no_session").done();

    case "dial": {
      if (!state.session) return precondition(state, "StartCall needs a session (StartSession)");
      if (call) return precondition(state, "StartCall needs the current call to end first");
      return dialOut(t, state.session, { id: event.callId, peer: event.callee, headers: event.headers,
        ringDeadline: event.ringDeadline, now: event.now });
    }

    case "ring": {
      if (!state.session) return precondition(state, "an incoming call needs a session");
      if (call) return precondition(state, "an incoming call needs the account to be free");
      const auto = state.session.autoAnswerSeconds;
      const next: SipCall = { id: event.callId, direction: "incoming", peer: event.caller, phase: "ringing",
        headers: callHeaders(state.session, event.callId, event.headers), muted: false, ringDeadline: event.ringDeadline,
        ...(auto > 0 ? { answerAt: event.now + auto * 1000 } : {}) };
      t.state = { ...t.state, call: next };
      return t.callStatus(event.now, "incoming_call_initiated").done();
    }

    case "connected":
      if (!call || call.id !== event.callId || call.phase !== "ringing") return t.done();
      t.state = { ...t.state, call: { ...call, phase: "connected", answering: false } };
      return t.callStatus(event.now, call.direction === "outgoing" ? "outgoing_call_connected" : "incoming_call_connected").done();

    case "ended": {
      if (!call || call.id !== event.callId) return t.done();
      const failed = event.failed && call.phase === "ringing";
      t.callStatus(event.now, `${call.direction}_call_${failed ? "failed" : "finished"}`,
        event.failed ? { reason: event.reason } : {});
      t.effects.push({ type: "stop_playback" }, { type: "close_leg", callId: call.id });
      t.state = { ...t.state, call: undefined };
      return t.done();
    }

    case "hangup":
      if (!call) return precondition(state, "EndCall needs a call");
      if (call.phase === "transferring") return precondition(state, "EndCall has to wait for the transfer in progress");
      if (call.phase === "hanging_up") {
        if (!event.hard) return t.done();
        hangUpNow(t, call, true, event.now);
        return t.done();
      }
      if (event.hard || call.phase === "ringing") {
        hangUpNow(t, call, event.hard, event.now);
        return t.done();
      }
      t.state = { ...t.state, call: { ...call, phase: "hanging_up", hangupBy: event.now + SIP_SOFT_HANGUP_MAX_MS } };
      t.callStatus(event.now, "soft_hangup_initiated");
      t.effects.push({ type: "drain", callId: call.id });
      return t.done();

    case "drained":
      if (!call || call.id !== event.callId || call.phase !== "hanging_up") return t.done();
      finish(t, call, event.now);
      return t.done();

    case "mute": {
      if (!call || (call.phase !== "ringing" && call.phase !== "connected")) {
        return precondition(state, `${event.muted ? "Mute" : "UnMute"} needs a ringing or connected call`);
      }
      if (call.muted === event.muted) return t.done();
      t.state = { ...t.state, call: { ...call, muted: event.muted } };
      t.callStatus(event.now, state.status);
      t.effects.push({ type: "set_muted", muted: event.muted });
      return t.done();
    }

    case "transfer_begin":
      if (!call || call.phase !== "connected") return precondition(state, "TransferCall needs a connected call");
      t.state = { ...t.state, call: { ...call, phase: "transferring" } };
      return t.done();

    case "transfer_abort":
      if (!call || call.phase !== "transferring") return t.done();
      t.state = { ...t.state, call: { ...call, phase: "connected" } };
      return t.done();

    case "transfer":
      if (!call || call.phase !== "transferring") return precondition(state, "a transfer needs a connected call");
      t.callStatus(event.now, "transfer_call_initiated", event.headers, event.target);
      t.effects.push({ type: "stop_playback" }, { type: "close_leg", callId: call.id },
        { type: "end_call", callId: call.id, side: sideOf(call), code: null, reason: `transferred to ${event.target}`, claimFirst: false });
      t.callStatus(event.now, `${call.direction}_call_finished`, {}, event.target);
      t.state = { ...t.state, call: undefined };
      return t.done();

    case "recalled": {
      if (!call || call.id !== event.oldCallId || call.phase !== "connected") {
        return precondition(state, `a transfer needs ${state.account} to be connected in call ${event.oldCallId}`);
      }
      const session = state.session!;
      t.callStatus(event.now, `${call.direction}_call_finished`, {}, event.target);
      t.effects.push({ type: "stop_playback" }, { type: "close_leg", callId: call.id });
      return dialOut(t, session, { id: event.newCallId, peer: event.target, headers: event.headers,
        ringDeadline: event.ringDeadline, now: event.now, transferId: event.target });
    }

    case "tick": {
      if (!call) return t.done();
      if (call.phase === "hanging_up" && call.hangupBy !== undefined && event.now >= call.hangupBy) {
        finish(t, call, event.now);
        return t.done();
      }
      if (call.phase !== "ringing") return t.done();
      if (event.now >= call.ringDeadline) {
        const reason = `not answered within the ring timeout`;
        t.callStatus(event.now, `${call.direction}_call_failed`, { reason });
        t.effects.push({ type: "stop_playback" }, { type: "close_leg", callId: call.id },
          { type: "end_call", callId: call.id, side: sideOf(call), code: Code.DeadlineExceeded, reason,
            claimFirst: call.direction === "incoming" });
        t.state = { ...t.state, call: undefined };
        return t.done();
      }
      if (call.answerAt !== undefined && !call.answering && event.now >= call.answerAt) {
        t.state = { ...t.state, call: { ...call, answering: true } };
        t.effects.push({ type: "answer_call", callId: call.id });
      }
      return t.done();
    }
  }
}

/** Collects the statuses and effects of one step, keeping `state.status` the newest status. */
class Transition {
  readonly effects: SipEffect[] = [];
  constructor(public state: SipAccountState) {}

  status(now: number, type: StatusName): this {
    return this.append({ at: now, type, calleeId: "", transferCallId: "", headers: {} });
  }

  /** A status of the current call, which carries the call's headers and mute state. */
  callStatus(now: number, type: StatusName, extra: Record<string, string> = {}, transferCallId?: string): this {
    const call = this.state.call!;
    return this.append({ at: now, type, calleeId: call.peer, transferCallId: transferCallId ?? call.transferId ?? "",
      headers: { ...call.headers, ...extra, muted: String(call.muted) } });
  }

  done(): SipTransition {
    return { ok: true, state: this.state, effects: this.effects };
  }

  private append(entry: SipStatusEntry): this {
    this.effects.push({ type: "status", entry });
    this.state = { ...this.state, status: entry.type };
    return this;
  }
}

/** Ends the call from this side at once: `*_hangup_initiated`, then `*_call_finished`. A callee
 * that hangs up before answering declines the call, which fails it for the caller. */
/** Places an outgoing call (StartCall, or the re-call of a transfer): outgoing_call_initiated, the
 * call started on the shared call model, and its audio leg dialled until the ring deadline. */
function dialOut(t: Transition, session: SipSession, call: { id: string; peer: string; headers: Record<string, string>;
  ringDeadline: number; now: number; transferId?: string }): SipTransition {
  const { id, peer, headers, ringDeadline, now, transferId } = call;
  const next: SipCall = { id, direction: "outgoing", peer, phase: "ringing", headers: callHeaders(session, id, headers),
    ...(transferId !== undefined ? { transferId } : {}), muted: false, ringDeadline };
  t.state = { ...t.state, call: next };
  t.callStatus(now, "outgoing_call_initiated");
  t.effects.push(
    { type: "start_call", callId: id, callee: peer, meta: headers, ringDeadline },
    { type: "open_leg", callId: id, peer, dials: true, dialUntil: ringDeadline });
  return t.done();
}

function hangUpNow(t: Transition, call: SipCall, hard: boolean, now: number): void {
  t.callStatus(now, hard ? "hard_hangup_initiated" : "soft_hangup_initiated");
  const declined = call.direction === "incoming" && call.phase === "ringing";
  t.effects.push({ type: "stop_playback" }, { type: "close_leg", callId: call.id },
    declined
      ? { type: "end_call", callId: call.id, side: "callee", code: Code.Unavailable, reason: `${t.state.account} declined the call`, claimFirst: true }
      : { type: "end_call", callId: call.id, side: sideOf(call), code: null, reason: `${t.state.account} hung up`, claimFirst: false });
  t.callStatus(now, `${call.direction}_call_finished`);
  t.state = { ...t.state, call: undefined };
}

/** The end of a soft hangup: the queued audio has played (or the wait ran out). */
function finish(t: Transition, call: SipCall, now: number): void {
  t.effects.push({ type: "stop_playback" }, { type: "close_leg", callId: call.id },
    { type: "end_call", callId: call.id, side: sideOf(call), code: null, reason: `${t.state.account} hung up`, claimFirst: false });
  t.callStatus(now, `${call.direction}_call_finished`);
  t.state = { ...t.state, call: undefined };
}

function sideOf(call: SipCall): Side {
  return call.direction === "outgoing" ? "caller" : "callee";
}

function callHeaders(session: SipSession, callId: string, headers: Record<string, string>): Record<string, string> {
  return { ...headers, "call-id": callId, "audio-url": `${session.audioBase}${callId}` };
}

/** PlayWavFiles needs a connected call; the failure names the state the account is in. */
export function needsConnectedCall(state: SipAccountState, rpc: string): Failure | undefined {
  return state.call?.phase === "connected" ? undefined : precondition(state, `${rpc} needs a connected call`);
}

/** Wrong state: the message names what the RPC needs and the state the account is in. */
function precondition(state: SipAccountState, needs: string): Failure {
  return failure(Code.FailedPrecondition, `${needs}; account ${state.account} is in state ${state.status}`);
}

// What a call object keeps: the record it stores as one row, the attachment each door's socket
// carries, and the views of the call it gives out (summary, change, history). Pure functions of
// the record; durable-objects/call.ts is the shell that loads, steps, persists and performs.
import { Code } from "@connectrpc/connect";
import {
  SIDES, step, type CallEvent, type CallState, type CallStatus, type Door, type Effect, type Party, type Side, type Signal,
  type SocketFacts,
} from "../model/call-model";
import type { CallAction, CallPush } from "./spine-messages";
import type { OutboxEntry } from "./operator-outbox";
import { MAX_QUEUED_SIGNALS } from "../model/limits";
import { failure, type Failure } from "../model/result";

// The record is one key of the object's key-value store (SQLite-backed: one row written per put).
// A table of its own would cost two more rows per call, in the schema, since every call is a new
// object and its first write would create the table.
export const RECORD_KEY = "call";

export interface QueuedSignal {
  seq: number;
  signal: Signal;
}

export interface HistoryEntry {
  at: number;
  status: CallStatus;
  side?: Side;
  detail?: string;
}

export interface CallSummary {
  id: string;
  host: string;
  caller: Party;
  callee?: Party;
  phase: CallState["phase"];
  offer: string;
  disableTrickle: boolean;
  offerDeadline: number;
  meta?: Record<string, string>;
}

/** What a watcher of the call (a SIP account) is told after each status change. */
export interface CallChange {
  id: string;
  host: string;
  caller: Party;
  callee?: Party;
  phase: CallState["phase"];
  offerDeadline: number;
  end?: { code: Code | null; message: string; by: Side | "server" };
  meta?: Record<string, string>;
}

/** A signal waiting for a side with no socket open; `at` starts its SIGNAL_TTL_MS. */
export interface Backlogged extends QueuedSignal {
  at: number;
}

/** Everything that survives an eviction, stored as one row. */
export interface CallRecord {
  v: 1;
  call: CallState;
  history: HistoryEntry[];
  /** Signals queued while their side had no socket open, in seq order. */
  backlog: Record<Side, Backlogged[]>;
  /** Signals below this seq have been handed to a socket of that side. */
  read: Record<Side, number>;
  /** The seq the next signal gets. A seq is never reused, or a door whose cursor is past it
   * would skip it: each instance starts above every seq an earlier one can have handed out
   * (see load), since signals sent straight down a socket advance it without a write. */
  nextSeq: number;
  /** When each side sent done (its history entry may not be written yet). */
  doneAt: Partial<Record<Side, number>>;
  /** SIP accounts told of every status change (SipAccount.callChanged). */
  watchers: string[];
  /** Operator events of the changes written, not known to be sent (call-outbox.ts). */
  outbox?: OutboxEntry[];
}

/** Per-socket state: the side it follows, and what of that side the record may not hold yet
 * (written only at the next phase change). */
export interface CallAttachment {
  v: 1;
  side: Side;
  identity: string;
  read: number;
  candidates: number;
  doneAt: number | null;
  /** The callee's socket that took the call: the claim, which is not written on its own. */
  claim?: { door: Door; at: number };
  /** On the callee's socket: the caller's stream ended before its done, at this time (the wait
   * for that done is served by this socket's door; see CallState.callerLeftAt). */
  callerLeftAt?: number;
  /** Replaced by a newer socket of its side: its close changes nothing. */
  replaced?: true;
}

/** The record of a call just started. */
export function newRecord(call: CallState): CallRecord {
  return { v: 1, call, history: [], backlog: { caller: [], callee: [] }, read: { caller: 1, callee: 1 }, nextSeq: 1,
    doneAt: {}, watchers: [] };
}

/** When each side entered the call: the caller at its start, the callee at its claim. */
export function joinTimes(record: CallRecord): Partial<Record<Side, number>> {
  const claimed = record.history.find((h) => h.status === "claimed")?.at;
  return { caller: record.call.createdAt, ...(claimed !== undefined ? { callee: claimed } : {}) };
}

/** What the socket of `side` may hold that the row does not, and that must not be lost with it:
 * its counters, and the callee's claim. (`read` is left out: a side that closed has read what it
 * was sent.) */
export function countersOf(record: CallRecord, side: Side): string {
  const claimed = side === "callee" ? `:${record.call.callee?.identity ?? ""}` : "";
  return `${record.call.candidates[side]}:${record.call.done[side]}${claimed}`;
}

/** The call's claim as the callee's socket carries it (CallAttachment), from the record: a newer
 * socket of the callee takes it over, with the time it was made. */
export function claimOf(record: CallRecord): CallAttachment["claim"] {
  const callee = record.call.callee;
  if (!callee) return undefined;
  const at = record.history.find((h) => h.status === "claimed")?.at ?? record.call.createdAt;
  return { door: callee.door, at };
}

/** The history entries of a transition's status effects. */
export function statusEntries(effects: Effect[], at: number): HistoryEntry[] {
  return effects.flatMap((e) => e.type === "status" ? [{ at: e.at ?? at, status: e.status, ...(e.side ? { side: e.side } : {}),
    ...(e.detail ? { detail: e.detail } : {}) }] : []);
}

export function summarize(call: CallState): CallSummary {
  return { id: call.id, host: call.host, caller: call.caller, callee: call.callee, phase: call.phase,
    offer: call.offer, disableTrickle: call.disableTrickle, offerDeadline: call.offerDeadline,
    ...(call.meta ? { meta: call.meta } : {}) };
}

export function changeOf(call: CallState): CallChange {
  return { id: call.id, host: call.host, caller: call.caller, phase: call.phase, offerDeadline: call.offerDeadline,
    ...(call.callee ? { callee: call.callee } : {}),
    ...(call.end ? { end: { code: call.end.code, message: call.end.message, by: call.end.by } } : {}),
    ...(call.meta ? { meta: call.meta } : {}) };
}

/** A party's action as an event of the call's rules. */
export function eventOf(from: Side, action: CallAction, now: number): CallEvent {
  switch (action.op) {
    case "answer": return { type: "answer", sdp: action.sdp, now };
    case "candidate": return { type: "candidate", from, candidate: action.candidate, now, index: action.index };
    case "done": return { type: "done", from, now };
    case "fail": return { type: "fail", from, code: action.code, message: action.message, now };
    case "hangup": return { type: "hangup", from, now };
  }
}

/** The state a presence event leads to (such events cannot fail on an existing call). */
export function orSame(transition: ReturnType<typeof step>, state: CallState): CallState {
  return transition.ok ? transition.state : state;
}

export function sendPush(ws: WebSocket, push: CallPush): void {
  try {
    ws.send(JSON.stringify(push));
  } catch (err) {
    // A socket closing under us: its close handler settles the side.
    console.warn("call socket send failed", { err: String(err) });
  }
}

/** Refuses a socket upgrade with the failure as JSON, the way a door reads it back. */
export function refuseUpgrade(result: { code: Code; message: string }): Response {
  return Response.json({ code: result.code, message: result.message }, { status: 409 });
}

/** A stored record brought up to date after a wake with what the open sockets carry and the row
 * does not hold yet: through the rules' `reload`, with each restored entry at its own time. */
export function reloadFromSockets(record: CallRecord, marks: CallAttachment[], now: number): void {
  const sockets: Partial<Record<Side, SocketFacts>> = {};
  for (const mark of marks) {
    record.read[mark.side] = Math.max(record.read[mark.side], mark.read);
    sockets[mark.side] = { identity: mark.identity, candidates: mark.candidates, doneAt: mark.doneAt,
      ...(mark.claim ? { claim: mark.claim } : {}), ...(mark.callerLeftAt !== undefined ? { callerLeftAt: mark.callerLeftAt } : {}) };
  }
  const reloaded = step(record.call, { type: "reload", sockets, now });
  if (reloaded.ok) {
    record.call = reloaded.state;
    record.history.push(...statusEntries(reloaded.effects, now));
    for (const e of reloaded.effects) {
      if (e.type === "status" && (e.status === "caller_done" || e.status === "callee_done")) record.doneAt[e.side!] = e.at;
    }
  }
  // Entries folded in from both sockets, in the order they happened.
  record.history.sort((a, b) => a.at - b.at);
}

/** The attachment of a socket of `mark.side` holding the record's counters for that side (the same
 * object when nothing changed, so the caller writes it only then). */
export function markedFrom(mark: CallAttachment, record: CallRecord): CallAttachment {
  const { side } = mark;
  const doneAt = record.doneAt[side] ?? null;
  const left = side === "callee" ? record.call.callerLeftAt : undefined;
  if (mark.read === record.read[side] && mark.candidates === record.call.candidates[side] && mark.doneAt === doneAt
    && mark.callerLeftAt === left) return mark;
  const { callerLeftAt: _old, ...rest } = mark;
  return { ...rest, read: record.read[side], candidates: record.call.candidates[side], doneAt,
    ...(left !== undefined ? { callerLeftAt: left } : {}) };
}

/** Why `effects` cannot be applied to `record`: a side with no socket open (`hasSocket`) would have
 * more than MAX_QUEUED_SIGNALS signals waiting for it (resource_exhausted). Undefined when they can. */
export function backlogRefusal(record: CallRecord, effects: Effect[], hasSocket: (side: Side) => boolean): Failure | undefined {
  for (const side of SIDES) {
    const arriving = effects.filter((e) => e.type === "deliver" && e.to === side).length;
    if (arriving === 0 || hasSocket(side)) continue;
    const unread = record.backlog[side].filter((s) => s.seq >= record.read[side]).length;
    if (unread + arriving > MAX_QUEUED_SIGNALS) {
      return failure(Code.ResourceExhausted, `${MAX_QUEUED_SIGNALS} signals already wait for the ${side}`);
    }
  }
  return undefined;
}

/**
 * Whether the change `event` made (`prev` → `state`) must be written now. Only what a socket does
 * not carry is: a candidate, or a done that completes nothing, changes only counters its sender's
 * socket carries (and a clean leave before the done rides on the callee's socket, whose door serves
 * its deadline), and a claim only what the callee's new socket carries; without such a socket they
 * are written. Presence alone (a disconnect or a tick that changes no phase) never is. A signal put
 * in a backlog (`backlogged`) always is.
 */
export function mustWrite(event: CallEvent, prev: CallState | undefined, state: CallState,
  hasSocket: (side: Side) => boolean, backlogged: boolean): boolean {
  if (backlogged) return true;
  const samePhase = state.phase === prev?.phase;
  const countersOnly = event.type === "candidate" || (event.type === "done" && samePhase) || (event.type === "disconnect" && samePhase);
  const sender = event.type === "claim" ? "callee" : "from" in event ? event.from : undefined;
  if ((countersOnly || event.type === "claim") && sender && hasSocket(sender)) return false;
  return !((event.type === "disconnect" || event.type === "tick") && samePhase);
}

// What an operator is told about a room, as LiveKit's webhooks tell it: room_started,
// participant_joined, participant_left, participant_connection_aborted, room_finished. Pure: the
// events of a call are derived here, in one place, from one recorded transition (the state before
// and after `step`), so every door's calls produce the same events for the same changes, and a new
// door needs nothing here. The objects write the events with the state change they follow (the
// outbox), and codecs/livekit-operator.ts puts them in LiveKit's wire shapes.
import { SIDES, type CallState, type Door, type Party, type Side } from "./call-model";
import type { RoomState as LiveKitRoomState, Session as LiveKitSession } from "./livekit-model";
import { ROOM_DIRECTORY_SHARDS } from "./limits";

export type OperatorEventName =
  | "room_started" | "room_finished" | "participant_joined" | "participant_left" | "participant_connection_aborted";

/** Why a participant left, as LiveKit's DisconnectReason names it. */
export type LeaveReason =
  | "client_initiated" | "participant_removed" | "room_deleted" | "signal_close" | "connection_timeout"
  | "join_failure" | "unknown";

/** A room as an operator sees it (LiveKit's Room, the fields this server fills in). */
export interface OperatorRoom {
  sid: string;
  name: string;
  /** Milliseconds since the epoch. */
  createdAt: number;
  metadata: string;
  numParticipants: number;
}

/** A participant as an operator sees it (LiveKit's ParticipantInfo, the fields this server fills in). */
export interface OperatorParticipant {
  sid: string;
  identity: string;
  name: string;
  /** Milliseconds since the epoch. */
  joinedAt: number;
  /** A SIP account is a SIP participant; everyone else is a standard one. */
  kind: "standard" | "sip";
  state: "active" | "disconnected";
  metadata: string;
  disconnectReason?: LeaveReason;
}

export interface OperatorEvent {
  event: OperatorEventName;
  room: OperatorRoom;
  participant?: OperatorParticipant;
  /** Milliseconds since the epoch: when the change was recorded. */
  at: number;
}

/** The kinds of rooms there are: a call of any door, a LiveKit room, an audio relay room. */
export type RoomKind = "call" | "livekit" | "audio";

/**
 * Doors whose side stays in the call after its signaling is done: a SIP account's call lasts until
 * EndCall (it sends done as soon as its SDP is out), and the audio relay carries the media itself.
 * A Viam, Voice or LiveKit side is finished with the server once it has sent done and been answered.
 */
const STAYS_AFTER_DONE: ReadonlySet<Door> = new Set<Door>(["sip", "audio"]);


/** Names the doors of a call: the room's metadata, as JSON. */
export function callMetadata(call: CallState): string {
  return JSON.stringify({ kind: "call", host: call.host,
    doors: { caller: call.caller.door, ...(call.callee ? { callee: call.callee.door } : {}) } });
}

function partyOf(call: CallState, side: Side): Party | undefined {
  return side === "caller" ? call.caller : call.callee;
}

/** Whether `side` is in the call and has not left it. */
function present(call: CallState, side: Side): boolean {
  const party = partyOf(call, side);
  if (!party) return false;
  if (call.phase === "ended") return false;
  // Done before the answer still waits for it; done after it has nothing more to do here.
  const answered = call.answer !== undefined;
  return !(call.done[side] && answered && !STAYS_AFTER_DONE.has(party.door));
}

/** Whether the call's room is still open: someone is in it. */
export function callRoomOpen(call: CallState): boolean {
  return SIDES.some((side) => present(call, side));
}

/** LiveKit-style ids, stable for the call: every event of a room carries the same sids. */
export function callRoomSid(callId: string): string {
  return `RM_${callId.replace(/-/g, "").slice(0, 12)}`;
}
function callParticipantSid(callId: string, side: Side): string {
  return `PA_${side === "caller" ? "C" : "A"}${callId.replace(/-/g, "").slice(0, 11)}`;
}

/** The room of a call as it stands. */
export function callRoom(call: CallState, metadata?: string): OperatorRoom {
  return { sid: callRoomSid(call.id), name: call.id, createdAt: call.createdAt,
    metadata: metadata ?? callMetadata(call), numParticipants: SIDES.filter((side) => present(call, side)).length };
}

/** A side of the call as a participant. `joinedAt`: when it entered (the call's start, or its claim). */
export function callParticipant(call: CallState, side: Side, joinedAt: number, reason?: LeaveReason): OperatorParticipant {
  const party = partyOf(call, side)!;
  return {
    sid: callParticipantSid(call.id, side), identity: party.identity, name: party.identity, joinedAt,
    kind: party.door === "sip" ? "sip" : "standard",
    state: present(call, side) ? "active" : "disconnected",
    metadata: JSON.stringify({ side, door: party.door }),
    ...(reason && !present(call, side) ? { disconnectReason: reason } : {}),
  };
}

/** The participants of a call as it stands (those still in it). */
export function callParticipants(call: CallState, joinedAt: Partial<Record<Side, number>>): OperatorParticipant[] {
  return SIDES.filter((side) => present(call, side))
    .map((side) => callParticipant(call, side, joinedAt[side] ?? call.createdAt));
}

/** Why a side that left `call` did so. `removed`: an operator ended it (RoomService). */
function leaveReason(call: CallState, removed: LeaveReason | undefined): LeaveReason {
  if (call.phase !== "ended") return "client_initiated";
  if (removed) return removed;
  const end = call.end!;
  if (end.code === null) return "client_initiated";
  if (/disconnected|left without/.test(end.message)) return "signal_close";
  if (end.by === "server") return "connection_timeout";
  return "client_initiated";
}

/**
 * The events of one recorded transition of a call, in order. `prev` is undefined for the call's
 * start. `joinedAt` is when each side entered (the callee's claim may be recorded later than it
 * happened). `removed` names an operator's ending (RemoveParticipant, DeleteRoom).
 *
 * - room_started and the caller's participant_joined when the call starts;
 * - participant_joined for the callee when it takes the call;
 * - for each side that is no longer in the call: participant_left, or, when the call ended in a
 *   failure before it was ever answered (the side never got connected, as livekit-server says of
 *   a participant that was never active), participant_connection_aborted;
 * - room_finished once nobody is left.
 */
export function callEvents(prev: CallState | undefined, next: CallState, now: number,
  joinedAt: Partial<Record<Side, number>> = {}, removed?: LeaveReason): OperatorEvent[] {
  const events: OperatorEvent[] = [];
  // Made only for a transition that has events: most (a candidate, a wake) have none.
  let made: OperatorRoom | undefined;
  const room = () => (made ??= callRoom(next));
  const joined = (side: Side) => joinedAt[side] ?? (side === "caller" ? next.createdAt : now);
  if (!prev) {
    events.push({ event: "room_started", room: { ...room(), numParticipants: 0 }, at: now });
  }
  for (const side of SIDES) {
    if (!partyOf(next, side)) continue;
    const wasIn = prev !== undefined && partyOf(prev, side) !== undefined;
    if (!wasIn) {
      // A side that joins and leaves in one step (it cannot today) still joins first.
      events.push({ event: "participant_joined", room: room(), participant: { ...callParticipant(next, side, joined(side)),
        state: "active" }, at: now });
    }
    if ((!wasIn || present(prev!, side)) && !present(next, side)) {
      const aborted = next.phase === "ended" && next.end?.code !== null && next.answer === undefined;
      events.push({ event: aborted ? "participant_connection_aborted" : "participant_left", room: room(),
        participant: callParticipant(next, side, joined(side), leaveReason(next, removed)), at: now });
    }
  }
  if ((!prev || callRoomOpen(prev)) && !callRoomOpen(next)) {
    events.push({ event: "room_finished", room: room(), at: now });
  }
  return events;
}

/** The directory shard of a room: FNV-1a of its name, modulo ROOM_DIRECTORY_SHARDS. Names are ids
 * or user-chosen, so a cheap hash spreads them evenly enough; nothing adversarial rides on it. */
export function directoryShard(name: string, shards = ROOM_DIRECTORY_SHARDS): number {
  return fnv1a(name) % shards;
}

/** 32-bit FNV-1a of a string's UTF-16 code units. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** WEBHOOK_URLS: comma-separated http(s) URLs; blanks and anything else are ignored. */
export function webhookUrls(value: string | undefined): string[] {
  return (value ?? "").split(",").map((url) => url.trim()).filter((url) => /^https?:\/\/\S+$/i.test(url));
}

// ---- LiveKit rooms ------------------------------------------------------------------------------

/** A LiveKit room as it stands (its last state with someone in it, when it just emptied). */
export function liveKitRoom(state: LiveKitRoomState, was?: LiveKitRoomState): OperatorRoom {
  const named = state.sid ? state : was ?? state;
  return { sid: named.sid, name: named.name, createdAt: named.createdAt, metadata: JSON.stringify({ kind: "livekit" }),
    numParticipants: state.sessions.length };
}

export function liveKitParticipant(session: LiveKitSession, state: OperatorParticipant["state"] = "active",
  reason?: LeaveReason): OperatorParticipant {
  return { sid: session.sid, identity: session.identity, name: session.name, joinedAt: session.joinedAt, kind: "standard",
    state, metadata: session.metadata, ...(reason ? { disconnectReason: reason } : {}) };
}

/**
 * The events of one transition of a LiveKit room (model/livekit-model.ts): room_started when the
 * first participant joins, participant_joined for each new session, participant_left for each one
 * gone (participant_connection_aborted for one that was never paired with a peer, as livekit-server
 * says of a participant that never became active), room_finished when the last one is gone. A
 * resume keeps its session, so it is no event; a rejoin with the same identity keeps its sid too.
 */
export function liveKitRoomEvents(prev: LiveKitRoomState, next: LiveKitRoomState, now: number,
  removed?: LeaveReason): OperatorEvent[] {
  const events: OperatorEvent[] = [];
  const room = liveKitRoom(next, prev);
  const before = new Map(prev.sessions.map((s) => [s.sid, s]));
  const after = new Map(next.sessions.map((s) => [s.sid, s]));
  if (prev.sessions.length === 0 && next.sessions.length > 0) {
    events.push({ event: "room_started", room: { ...room, numParticipants: 0 }, at: now });
  }
  for (const [sid, session] of before) {
    if (after.has(sid)) continue;
    const aborted = session.peerEpoch === undefined;
    const reason: LeaveReason = removed ?? (session.connection === undefined ? "signal_close"
      : aborted && session.waitUntil !== undefined && now >= session.waitUntil ? "join_failure" : "client_initiated");
    events.push({ event: aborted ? "participant_connection_aborted" : "participant_left", room,
      participant: liveKitParticipant(session, "disconnected", reason), at: now });
  }
  for (const [sid, session] of after) {
    if (!before.has(sid)) events.push({ event: "participant_joined", room, participant: liveKitParticipant(session), at: now });
  }
  if (prev.sessions.length > 0 && next.sessions.length === 0) events.push({ event: "room_finished", room, at: now });
  return events;
}

// ---- Audio relay rooms --------------------------------------------------------------------------

/** Who is in an audio relay room (seed 003), as its object records it: identity → joined at (ms). */
export interface AudioRoomMembers {
  sid: string;
  createdAt: number;
  members: Record<string, number>;
}

const CALL_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** An audio room named by a call id is that call's media (a SIP call's relay leg): the call's own
 * room reports it, so the audio room reports nothing of its own. */
export function audioRoomReported(name: string): boolean {
  return !CALL_ID.test(name);
}

export function audioRoom(name: string, record: AudioRoomMembers, numParticipants: number): OperatorRoom {
  return { sid: record.sid, name, createdAt: record.createdAt, metadata: JSON.stringify({ kind: "audio" }), numParticipants };
}

export function audioParticipant(name: string, identity: string, joinedAt: number, state: OperatorParticipant["state"] = "active",
  reason?: LeaveReason): OperatorParticipant {
  // Stable for the username in this room, so its joined and left events carry the same sid.
  return { sid: `PA_${fnv1a(`${name}\n${identity}`).toString(36).padStart(7, "0")}`, identity, name: identity, joinedAt, kind: "standard", state,
    metadata: JSON.stringify({ door: "audio" }), ...(reason ? { disconnectReason: reason } : {}) };
}

/**
 * The events of a change of who is in an audio room: `live` are the identities with a socket in it
 * now. Returns the new record (undefined once the room is empty) and its events: room_started with
 * the first, participant_joined and participant_left as sockets come and go (a socket replaced by a
 * newer one of the same identity is no change), room_finished with the last. `sid` is the new
 * room's id if one starts.
 */
export function audioRoomEvents(name: string, prev: AudioRoomMembers | undefined, live: string[], now: number,
  sid: string, removed?: LeaveReason): { record: AudioRoomMembers | undefined; events: OperatorEvent[] } {
  const before = prev?.members ?? {};
  const current = new Set(live);
  const joined = live.filter((identity) => !(identity in before));
  const left = Object.keys(before).filter((identity) => !current.has(identity));
  if (!joined.length && !left.length) return { record: prev, events: [] };
  const record: AudioRoomMembers = prev ?? { sid, createdAt: now, members: {} };
  const members = { ...before };
  for (const identity of left) delete members[identity];
  for (const identity of joined) members[identity] = now;
  const next = { ...record, members };
  const room = audioRoom(name, next, Object.keys(members).length);
  const events: OperatorEvent[] = [];
  if (!prev) events.push({ event: "room_started", room: { ...room, numParticipants: 0 }, at: now });
  for (const identity of left) {
    events.push({ event: "participant_left", room,
      participant: audioParticipant(name, identity, before[identity], "disconnected", removed ?? "client_initiated"), at: now });
  }
  for (const identity of joined) {
    events.push({ event: "participant_joined", room, participant: audioParticipant(name, identity, now), at: now });
  }
  if (Object.keys(members).length === 0) {
    events.push({ event: "room_finished", room, at: now });
    return { record: undefined, events };
  }
  return { record: next, events };
}

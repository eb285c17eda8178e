// The pairing rules of an audio room (seed 003) as a pure transition: no sockets, no clock.
// The AudioRoom object loads the parties an event touches from their socket attachments,
// calls `step`, writes back the parties that changed and performs the effects.
//
// A call: A's handshake (0) names B → B rings; B answers with accept (4), reject (3) or a
// counter-proposal (2); after a counter-proposal A accepts (4) or rejects (3). Once accepted both
// are paired and data (6) flows both ways. Drop (5) from either side, at any point of a call,
// ends it and tells the other. A socket is in at most one call.
//
// Choices the seed leaves open:
// - A handshake from a socket already in a call is a protocol error (1002). Answering it with a
//   reject (3) would be ambiguous: on one socket with no call id, the client could not tell it
//   from its current peer rejecting. (Two parties dialling each other at the same instant hit
//   this; the second handshake to arrive loses its socket.)
// - A handshake naming a party that is busy in another call gets a reject (3): the party exists,
//   it cannot take the call, and the caller has no other call the 3 could belong to.
// - A handshake naming the caller itself gets user-not-found (1): there is no *other* party by
//   that name in the room.
// - In-flight frames: when a call ends by the other side's doing (drop, reject, disconnect) or
//   the server's (user not found, busy), the socket may already have sent data, a drop or an
//   answer that it would not have sent had it known. Until that socket makes a move that is valid
//   in its new state, such messages are discarded instead of costing it its socket; an audio
//   stream at 50 packets/s always has a few frames on the wire when the peer hangs up.
import { AudioMessageType, CloseCode, type AudioPacket } from "../codecs/audio-codec";
import { POLICY_VIOLATION } from "./close-codes";

export type PairingState =
  /** In no call. */
  | "idle"
  /** Sent a handshake; waits for the callee's answer. */
  | "calling"
  /** Received a handshake; must answer it. */
  | "ringing"
  /** Received a counter-proposal to its handshake; must accept or reject it. */
  | "considering"
  /** Sent a counter-proposal; waits for the caller's verdict. */
  | "countering"
  /** In a call: data flows. */
  | "paired";

export interface Party {
  identity: string;
  state: PairingState;
  /** The other party of the call; set in every state but idle. */
  peer?: string;
  /** The last call ended without this socket's doing: see "In-flight frames" above. */
  staleFramesExpected?: true;
}

/** The parties an event concerns, by identity; an absent identity is not in the room. (A Map, not
 * an object: identities such as "__proto__" or "constructor" are valid names.) */
export type Parties = ReadonlyMap<string, Party>;

export type PairingEvent =
  | { type: "packet"; from: string; packet: AudioPacket }
  /** The sender broke the protocol below the pairing rules: text frame, oversize, bad packet. */
  | { type: "violation"; from: string; code: number; reason: string }
  /** The party's socket closed or failed. */
  | { type: "left"; identity: string }
  /** A newer socket of the same identity arrived; the older one must go. */
  | { type: "replaced"; identity: string }
  /** The server ends the party's unanswered call (AUDIO_RING_TIMEOUT_MS): both parties get a drop. */
  | { type: "ring_timeout"; identity: string };

export type PairingEffect =
  /** The message just received, byte for byte. */
  | { type: "forward"; to: string }
  | { type: "send"; to: string; packet: AudioPacket }
  | { type: "close"; identity: string; code: number; reason: string };

export interface PairingTransition {
  /** Every party of the input, updated; a party that left the room is absent. Unchanged parties
   * are the same objects as in the input, so the shell writes back only what changed. */
  parties: Map<string, Party>;
  effects: PairingEffect[];
}

/** A newer socket of the same identity takes the place: the older one may not stay. */
export const REPLACED_CLOSE_CODE = POLICY_VIOLATION;
export const REPLACED_REASON = "replaced by a newer connection";

type Move =
  /** Both parties move to these states (sender, peer); the message goes to the peer. */
  | { to: PairingState; peerTo: PairingState }
  /** The call ends; the message goes to the peer. */
  | "hang-up"
  /** Nobody moves; the message goes to the peer. */
  | "relay";

/** What each state may send once a call exists (handshake and user-not-found are handled apart). */
const MOVES: Record<PairingState, Partial<Record<AudioMessageType, Move>>> = {
  idle: {},
  calling: { [AudioMessageType.Drop]: "hang-up" },
  ringing: {
    [AudioMessageType.CounterProposal]: { to: "countering", peerTo: "considering" },
    [AudioMessageType.Accept]: { to: "paired", peerTo: "paired" },
    [AudioMessageType.Reject]: "hang-up",
    [AudioMessageType.Drop]: "hang-up",
  },
  considering: {
    [AudioMessageType.Accept]: { to: "paired", peerTo: "paired" },
    [AudioMessageType.Reject]: "hang-up",
    [AudioMessageType.Drop]: "hang-up",
  },
  countering: { [AudioMessageType.Drop]: "hang-up" },
  paired: { [AudioMessageType.Data]: "relay", [AudioMessageType.Drop]: "hang-up" },
};

/** Answers (2, 3, 4), drop and data: the messages a socket may have in flight when its call ends. */
const IN_CALL_TYPES: ReadonlySet<number> = new Set([
  AudioMessageType.CounterProposal, AudioMessageType.Reject, AudioMessageType.Accept,
  AudioMessageType.Drop, AudioMessageType.Data,
]);

const EMPTY = new Uint8Array(0);

export function step(parties: Parties, event: PairingEvent): PairingTransition {
  const next = new Map(parties);
  const effects: PairingEffect[] = [];

  switch (event.type) {
    case "left":
      endCallOf(next, effects, event.identity);
      next.delete(event.identity);
      return { parties: next, effects };
    case "replaced":
      endCallOf(next, effects, event.identity);
      next.delete(event.identity);
      effects.push({ type: "close", identity: event.identity, code: REPLACED_CLOSE_CODE, reason: REPLACED_REASON });
      return { parties: next, effects };
    case "violation":
      return violation(next, effects, event.from, event.code, event.reason);
    case "ring_timeout": {
      const party = next.get(event.identity);
      if (!party || party.state === "idle" || party.state === "paired") return { parties: next, effects };
      endCallOf(next, effects, event.identity);
      // Neither side ended it, so both may still have answers or drops on the wire.
      next.set(event.identity, { identity: event.identity, state: "idle", staleFramesExpected: true });
      effects.push({ type: "send", to: event.identity, packet: { type: AudioMessageType.Drop, optional: EMPTY } });
      return { parties: next, effects };
    }
    case "packet":
      return onPacket(next, effects, event.from, event.packet);
  }
}

function onPacket(next: Map<string, Party>, effects: PairingEffect[], from: string, packet: AudioPacket): PairingTransition {
  let me = next.get(from);
  if (!me) throw new Error(`${from} is not among the parties given to step`);
  const peer = linkedPeer(next, me);
  if (me.state !== "idle" && !peer) {
    // The peer is gone without its departure reaching us (a lost close): end the call here.
    me = { identity: from, state: "idle", staleFramesExpected: true };
    next.set(from, me);
    effects.push({ type: "send", to: from, packet: { type: AudioMessageType.Drop, optional: EMPTY } });
  }

  if (packet.type === AudioMessageType.Handshake) {
    if (me.state !== "idle") return violation(next, effects, from, CloseCode.ProtocolError, `handshake while ${me.state}: one call per socket`);
    return dial(next, effects, me, packet);
  }
  if (packet.type === AudioMessageType.UserNotFound) {
    return violation(next, effects, from, CloseCode.ProtocolError, "user-not-found is sent only by the server");
  }
  const move = MOVES[me.state][packet.type];
  if (move && peer) {
    if (move === "hang-up") return hangUp(next, effects, me, peer);
    if (move !== "relay") {
      // A valid move proves the socket knows its state: nothing stale can follow it.
      next.set(from, { identity: from, state: move.to, peer: peer.identity });
      next.set(peer.identity, { ...peer, state: move.peerTo });
    }
    effects.push({ type: "forward", to: peer.identity });
    return { parties: next, effects };
  }
  if (me.staleFramesExpected && IN_CALL_TYPES.has(packet.type)) return { parties: next, effects };
  return violation(next, effects, from, CloseCode.ProtocolError, `message type ${packet.type} not allowed while ${me.state}`);
}

function dial(next: Map<string, Party>, effects: PairingEffect[], me: Party,
  handshake: Extract<AudioPacket, { type: 0 }>): PairingTransition {
  const t = { parties: next, effects };
  const callee = next.get(handshake.username);
  if (!callee || callee.identity === me.identity) {
    next.set(me.identity, { identity: me.identity, state: "idle", staleFramesExpected: true });
    effects.push({ type: "send", to: me.identity, packet: { type: AudioMessageType.UserNotFound } });
    return t;
  }
  if (callee.state !== "idle") {
    next.set(me.identity, { identity: me.identity, state: "idle", staleFramesExpected: true });
    effects.push({ type: "send", to: me.identity, packet: { type: AudioMessageType.Reject, optional: EMPTY } });
    return t;
  }
  next.set(me.identity, { identity: me.identity, state: "calling", peer: callee.identity });
  // The callee has not moved, so frames from its previous call may still be on the way.
  next.set(callee.identity, { ...callee, state: "ringing", peer: me.identity });
  // The callee learns who calls: the username names the other party, from the receiver's view.
  effects.push({ type: "send", to: callee.identity, packet: { ...handshake, username: me.identity } });
  return t;
}

/** `me` ends its call by its own reject or drop: the peer gets the message as sent. */
function hangUp(next: Map<string, Party>, effects: PairingEffect[], me: Party, peer: Party): PairingTransition {
  next.set(me.identity, { identity: me.identity, state: "idle" });
  next.set(peer.identity, { identity: peer.identity, state: "idle", staleFramesExpected: true });
  effects.push({ type: "forward", to: peer.identity });
  return { parties: next, effects };
}

function violation(next: Map<string, Party>, effects: PairingEffect[], from: string, code: number, reason: string): PairingTransition {
  endCallOf(next, effects, from);
  next.delete(from);
  effects.push({ type: "close", identity: from, code, reason });
  return { parties: next, effects };
}

/**
 * Whether a data packet from `me` is forwarded to `peer` as is with no party changing: what step
 * does with it when the two are paired with each other. The room relays audio on this answer
 * without running step for every frame (tests hold the two to the same result).
 */
export function relaysDataAsIs(me: Party, peer: Party): boolean {
  return me.state === "paired" && MOVES.paired[AudioMessageType.Data] === "relay"
    && me.peer === peer.identity && peer.peer === me.identity;
}

/** The other party of `party`'s call, if that party is in the room and in the call with it. */
function linkedPeer(parties: Parties, party: Party): Party | undefined {
  const peer = party.peer !== undefined ? parties.get(party.peer) : undefined;
  return peer?.peer === party.identity ? peer : undefined;
}

/** `identity` is leaving the room: its peer, if still in the call with it, is told with a drop. */
function endCallOf(next: Map<string, Party>, effects: PairingEffect[], identity: string): void {
  const party = next.get(identity);
  const peer = party && linkedPeer(next, party);
  if (!peer) return;
  next.set(peer.identity, { identity: peer.identity, state: "idle", staleFramesExpected: true });
  effects.push({ type: "send", to: peer.identity, packet: { type: AudioMessageType.Drop, optional: EMPTY } });
}

// The rules of a LiveKit room served peer to peer, as a pure transition: no sockets, no clock, no
// randomness (events carry the time and fresh ids). The LiveKitRoom object loads the state,
// calls `step`, persists the result, sends the effects' messages and sets its alarm to
// `nextDeadline`.
//
// There is no SFU. livekit-client (v0 `/rtc` path, subscriber_primary=false) opens two peer
// connections: a publisher that offers and a subscriber that answers. The room pairs two
// participants' connections crosswise: A's publisher offer goes to B as B's subscriber offer,
// B's answer goes back to A with the same id, and the other way round; trickle candidates follow
// with their target flipped. So a room holds at most two participants.
//
// Pairing is per *epoch*: one full join, i.e. one pair of peer connections (a resume keeps it).
// - A participant alone waits for a peer, its first offer and candidates parked here, because
//   room.connect() resolves only once the publisher connection is connected. When nobody comes
//   within LIVEKIT_PEER_WAIT_MS it gets leave{JOIN_FAILURE} and is removed.
// - Two unpaired participants are paired at once and their parked offers delivered.
// - Peer connections cannot move to another peer (DTLS, SCTP and m-line history are bound to
//   the old one). A participant whose peer's epoch is gone (left, or joined again with new
//   connections) is *orphaned*; once someone else is in the room it is asked to rejoin with
//   leave{RECONNECT}, and pairs afresh. Alone, it stays as it is: the app sees its peer leave.
// - A socket that closes without a leave keeps its place for LIVEKIT_RESUME_WINDOW_MS, for a
//   resume (`reconnect=1`) whose ICE-restart offer relays like any other.
// - A rejoin (same identity again, or one that left moments ago) is paired only
//   LIVEKIT_RESTART_SETTLE_MS after its join, to stay clear of a livekit-client race (see
//   `pairUnpaired`).
//
// The rules are spread by responsibility: the state, events and effects (livekit-state.ts), the
// wire messages built from them (livekit-messages.ts), pairing (livekit-pairing.ts) and what a
// participant publishes (livekit-tracks.ts); this file holds `step`, membership and the dispatch of
// signal requests.
import { create } from "@bufbuild/protobuf";
import { DisconnectReason, ParticipantInfo_State } from "../proto/gen/livekit_models_pb";
import {
  JoinResponseSchema, LeaveRequest_Action, PongSchema, ReconnectResponseSchema, RequestResponse_Reason,
  RequestResponseSchema, type UpdateParticipantMetadata,
} from "../proto/gen/livekit_rtc_pb";
import { NORMAL_CLOSURE, POLICY_VIOLATION } from "./close-codes";
import {
  LIVEKIT_MAX_PARTICIPANTS, LIVEKIT_PEER_WAIT_MS, LIVEKIT_PING_INTERVAL_S, LIVEKIT_PING_TIMEOUT_S,
  LIVEKIT_RESTART_SETTLE_MS, LIVEKIT_RESUME_WINDOW_MS,
} from "./limits";
import { iceServer, leaveRequest, participantInfo, roomInfo, SERVER_VERSION, serverInfo, update } from "./livekit-messages";
import { deliverParked, orphaned, pairedPeer, pairUnpaired, restartOrphans } from "./livekit-pairing";
import {
  close, emptyRoom, reachable, send, sessionOn, type RoomEvent, type RoomState, type RoomTransition, type Session, type Step,
} from "./livekit-state";
import { changed, onAddTrack, onAnswer, onOffer, onTrickle } from "./livekit-tracks";

export {
  emptyRoom, type ParkedOffer, type PublishedTrack, type RoomEffect, type RoomEvent, type RoomState, type RoomTransition,
  type Session,
} from "./livekit-state";
export { participantInfo, SERVER_VERSION } from "./livekit-messages";

/** The earliest time at which a `tick` changes something, if any. */
export function nextDeadline(room: RoomState): number | undefined {
  const times = room.sessions.flatMap((s) => [s.waitUntil, s.goneUntil, s.settleUntil]).filter((t): t is number => t !== undefined);
  return times.length ? Math.min(...times) : undefined;
}

/** One transition; `state` is never modified. */
export function step(state: RoomState, event: RoomEvent): RoomTransition {
  const c: Step = { room: structuredClone(state), effects: [], now: event.now };
  c.room.departed = c.room.departed.filter((d) => d.until > c.now);
  switch (event.type) {
    case "join": join(c, event); break;
    case "resume": resume(c, event); break;
    case "request": request(c, event); break;
    case "closed": closed(c, event.connection); break;
    case "tick": tick(c); break;
    case "remove": remove(c, event); break;
  }
  if (c.room.sessions.length === 0) c.room = emptyRoom(c.room.name);
  return { state: c.room, effects: c.effects };
}

// ---- membership -------------------------------------------------------------------------------

function join(c: Step, e: Extract<RoomEvent, { type: "join" }>): void {
  const { grant } = e;
  const existing = c.room.sessions.find((s) => s.identity === grant.identity);
  if (!existing && c.room.sessions.length >= LIVEKIT_MAX_PARTICIPANTS) {
    refuse(c, e.connection, DisconnectReason.JOIN_FAILURE, LeaveRequest_Action.DISCONNECT,
      `room is full: peer-to-peer rooms hold ${LIVEKIT_MAX_PARTICIPANTS} participants`);
    return;
  }
  if (c.room.sessions.length === 0) {
    c.room.sid = e.freshRoomSid;
    c.room.createdAt = e.now;
  }
  c.room.name = grant.room;
  // A rejoin: the same identity is still here (the restart the room asked for, a client's own
  // full reconnect whose leave got lost, a second device) or left moments ago (a client's own full
  // reconnect opens with a leave).
  const restart = existing !== undefined || c.room.departed.some((d) => d.identity === grant.identity);
  c.room.departed = c.room.departed.filter((d) => d.identity !== grant.identity);
  if (existing) {
    // The newest wins, as on livekit-server; it keeps the sid, and its peer connections are new,
    // so a peer paired with the old ones is now orphaned.
    if (existing.connection && !existing.restarting) {
      send(c, existing.connection, { case: "leave", value: leaveRequest(DisconnectReason.DUPLICATE_IDENTITY, LeaveRequest_Action.DISCONNECT) });
      close(c, existing.connection, POLICY_VIOLATION, "the same identity joined again");
    } else if (existing.connection) {
      close(c, existing.connection, NORMAL_CLOSURE, "rejoined");
    }
    c.room.sessions = c.room.sessions.filter((s) => s !== existing);
  }
  const session: Session = {
    sid: existing?.sid ?? e.freshSid,
    identity: grant.identity,
    name: grant.name,
    metadata: grant.metadata,
    attributes: grant.attributes,
    grant: {
      canPublish: grant.canPublish, canPublishSources: grant.canPublishSources, canSubscribe: grant.canSubscribe,
      canPublishData: grant.canPublishData, canUpdateOwnMetadata: grant.canUpdateOwnMetadata,
    },
    joinedAt: e.now,
    clientProtocol: e.clientProtocol,
    version: (existing?.version ?? 0) + 1,
    epoch: e.connection,
    connection: e.connection,
    tracks: [],
    candidates: [],
    waitUntil: e.now + LIVEKIT_PEER_WAIT_MS,
    ...(restart ? { settleUntil: e.now + LIVEKIT_RESTART_SETTLE_MS } : {}),
  };
  c.room.sessions = [...c.room.sessions, session];
  // Restarts first. A participant about to rejoin is left out of the JoinResponse (its tracks go
  // with its old connections; it is announced when it is back) and is not told of the newcomer:
  // its client would report the newcomer as disconnected when the restart clears its remote
  // participants.
  restartOrphans(c);
  const others = c.room.sessions.filter((s) => s !== session && !s.restarting);
  send(c, session.connection!, {
    case: "join",
    value: create(JoinResponseSchema, {
      room: roomInfo(c.room),
      participant: participantInfo(session, ParticipantInfo_State.JOINED),
      otherParticipants: others.map((o) => participantInfo(o)),
      serverVersion: SERVER_VERSION,
      serverInfo: serverInfo(),
      iceServers: e.iceServers.map(iceServer),
      // Publisher-primary: each client's publisher offers as soon as it joins, so both
      // directions start without a server-made offer (subscriber-primary would deadlock P2P).
      subscriberPrimary: false,
      pingInterval: LIVEKIT_PING_INTERVAL_S,
      pingTimeout: LIVEKIT_PING_TIMEOUT_S,
    }),
  });
  announce(c, session);
  pairUnpaired(c);
}

function resume(c: Step, e: Extract<RoomEvent, { type: "resume" }>): void {
  const session = c.room.sessions.find((s) => s.identity === e.identity);
  if (!session || session.sid !== e.sid || session.restarting || orphaned(c, session)) {
    // Nothing to resume here (the session ended, or its peer connections can no longer reach a
    // peer): livekit-server's answer, a full reconnect with a fresh join.
    refuse(c, e.connection, DisconnectReason.STATE_MISMATCH, LeaveRequest_Action.RECONNECT,
      "no session to resume");
    return;
  }
  if (session.connection) close(c, session.connection, NORMAL_CLOSURE, "resumed on a newer connection");
  session.connection = e.connection;
  delete session.goneUntil;
  send(c, e.connection, {
    case: "reconnect",
    value: create(ReconnectResponseSchema, { iceServers: e.iceServers.map(iceServer), serverInfo: serverInfo() }),
  });
  // What the peer sent while this socket was away never arrived.
  const peer = pairedPeer(c, session);
  if (peer) deliverParked(c, peer, session);
}

function closed(c: Step, connection: string): void {
  const session = sessionOn(c, connection);
  if (!session) return;
  delete session.connection;
  session.goneUntil = c.now + LIVEKIT_RESUME_WINDOW_MS;
}

function tick(c: Step): void {
  for (const session of [...c.room.sessions]) {
    if (session.goneUntil !== undefined && session.goneUntil <= c.now) {
      depart(c, session, DisconnectReason.SIGNAL_CLOSE);
    } else if (session.waitUntil !== undefined && session.waitUntil <= c.now) {
      if (session.connection) {
        send(c, session.connection, { case: "leave", value: leaveRequest(DisconnectReason.JOIN_FAILURE, LeaveRequest_Action.DISCONNECT) });
      }
      depart(c, session, DisconnectReason.JOIN_FAILURE, "no other participant joined in time");
    }
  }
  restartOrphans(c);
  pairUnpaired(c);
}

/** Removes a session for good and tells the others. */
function depart(c: Step, session: Session, reason: DisconnectReason, closeReason = "left the room"): void {
  c.room.sessions = c.room.sessions.filter((s) => s !== session);
  // livekit-client's full reconnect starts with this very leave; the rejoin may follow.
  c.room.departed.push({ identity: session.identity, until: c.now + LIVEKIT_RESUME_WINDOW_MS });
  if (session.connection) close(c, session.connection, NORMAL_CLOSURE, closeReason);
  session.version++;
  const gone = participantInfo(session, ParticipantInfo_State.DISCONNECTED);
  gone.disconnectReason = reason;
  for (const other of reachable(c)) send(c, other.connection!, update(gone));
}

/** The server removes participants, as livekit-server does for RoomService: each is told with a
 * leave (DISCONNECT, so it does not come back by itself), and the others see it go. */
function remove(c: Step, e: Extract<RoomEvent, { type: "remove" }>): void {
  for (const session of c.room.sessions.filter((s) => e.identity === undefined || s.identity === e.identity)) {
    if (session.connection) send(c, session.connection, { case: "leave", value: leaveRequest(e.reason, LeaveRequest_Action.DISCONNECT) });
    depart(c, session, e.reason, "removed by an operator");
  }
}

/** Answers a socket that gets no session with a leave as its first message, then closes it. */
function refuse(c: Step, connection: string, reason: DisconnectReason, action: LeaveRequest_Action, why: string): void {
  send(c, connection, { case: "leave", value: leaveRequest(reason, action) });
  close(c, connection, NORMAL_CLOSURE, why);
}

// ---- signal requests --------------------------------------------------------------------------

function request(c: Step, e: Extract<RoomEvent, { type: "request" }>): void {
  const session = sessionOn(c, e.connection);
  if (!session) return; // a socket the room has already replaced or refused
  const { request: message } = e;
  switch (message.case) {
    case "offer": return onOffer(c, session, message.value);
    case "answer": return onAnswer(c, session, message.value);
    case "trickle": return onTrickle(c, session, message.value);
    case "addTrack": return onAddTrack(c, session, message.value, e.freshTrackSid);
    case "mute": {
      const track = session.tracks.find((t) => t.sid === message.value.sid);
      if (track && track.muted !== message.value.muted) {
        track.muted = message.value.muted;
        changed(c, session);
      }
      return;
    }
    case "updateAudioTrack": {
      const track = session.tracks.find((t) => t.sid === message.value.trackSid);
      if (track) {
        track.audioFeatures = [...message.value.features];
        changed(c, session);
      }
      return;
    }
    case "updateVideoTrack": {
      const track = session.tracks.find((t) => t.sid === message.value.trackSid);
      if (track) {
        track.width = message.value.width;
        track.height = message.value.height;
        changed(c, session);
      }
      return;
    }
    case "updateMetadata": return onUpdateMetadata(c, session, message.value);
    case "leave":
      // The leave that opens the restart the room asked for is not a departure.
      if (!session.restarting) depart(c, session, message.value.reason || DisconnectReason.CLIENT_INITIATED);
      return;
    case "ping":
      send(c, e.connection, { case: "pong", value: BigInt(c.now) });
      return;
    case "pingReq":
      send(c, e.connection, {
        case: "pongResp",
        value: create(PongSchema, { lastPingTimestamp: message.value.timestamp, timestamp: BigInt(c.now) }),
      });
      return;
    case "publishDataTrackRequest":
      send(c, e.connection, {
        case: "requestResponse",
        value: create(RequestResponseSchema, {
          reason: RequestResponse_Reason.UNSUPPORTED_TYPE,
          message: "data tracks need an SFU; peer-to-peer rooms do not have one",
          request: { case: "publishDataTrack", value: message.value },
        }),
      });
      return;
    default:
      // Subscription choices, track settings (adaptive stream), layers (simulcast, dynacast),
      // subscription permissions, sync_state after a resume, simulate: a direct peer connection
      // carries whatever the publisher sends, so there is nothing for the room to change.
      return;
  }
}

function onUpdateMetadata(c: Step, session: Session, req: UpdateParticipantMetadata): void {
  if (!session.grant.canUpdateOwnMetadata) {
    send(c, session.connection!, {
      case: "requestResponse",
      value: create(RequestResponseSchema, {
        requestId: req.requestId, reason: RequestResponse_Reason.NOT_ALLOWED,
        message: "the token does not grant canUpdateOwnMetadata", request: { case: "updateMetadata", value: req },
      }),
    });
    return;
  }
  // livekit-client always sends its whole name and metadata; an empty attribute value deletes it.
  session.name = req.name;
  session.metadata = req.metadata;
  for (const [key, value] of Object.entries(req.attributes)) {
    if (value === "") delete session.attributes[key];
    else session.attributes[key] = value;
  }
  changed(c, session);
}

/** Tells the others in the room about a participant that (re)joined. */
function announce(c: Step, session: Session): void {
  const info = participantInfo(session);
  for (const other of reachable(c)) {
    if (other !== session) send(c, other.connection!, update(info));
  }
}

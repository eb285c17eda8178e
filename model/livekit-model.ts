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
import { create } from "@bufbuild/protobuf";
import {
  DisconnectReason, ParticipantInfo_State, ParticipantInfoSchema, ParticipantPermissionSchema, RoomSchema,
  ServerInfoSchema, TrackInfoSchema, TrackSource, type AudioTrackFeature, type Encryption_Type, type ParticipantInfo,
  type TrackType,
} from "../proto/gen/livekit_models_pb";
import {
  ICEServerSchema, JoinResponseSchema, LeaveRequest_Action, LeaveRequestSchema,
  ParticipantUpdateSchema, PongSchema, ReconnectResponseSchema, RequestResponse_Reason, RequestResponseSchema,
  SessionDescriptionSchema, SignalTarget, TrackPublishedResponseSchema, TrackSubscribedSchema, TrickleRequestSchema,
  type AddTrackRequest, type SessionDescription, type SignalRequest, type SignalResponse, type TrickleRequest,
  type UpdateParticipantMetadata,
} from "../proto/gen/livekit_rtc_pb";
import type { IceServer } from "./ice-servers";
import { mediaSections, rewriteMsid } from "../codecs/livekit-sdp";
import type { LiveKitGrant } from "./livekit-grant";
import {
  LIVEKIT_MAX_PARKED_CANDIDATES, LIVEKIT_MAX_PARTICIPANTS, LIVEKIT_MAX_TRACKS_PER_PARTICIPANT, LIVEKIT_PEER_WAIT_MS,
  LIVEKIT_PING_INTERVAL_S, LIVEKIT_PING_TIMEOUT_S, LIVEKIT_RESTART_SETTLE_MS, LIVEKIT_RESUME_WINDOW_MS,
} from "./limits";

/** The livekit-server version the JoinResponse reports. livekit-client refuses a server without
 * one and allows RPC only from 1.8.0; up to 1.13.6 it publishes VP9/AV1 as one SVC encoding
 * rather than rid simulcast, which a browser receiving peer to peer decodes in full. */
export const SERVER_VERSION = "1.9.0";

/** Close codes (RFC 6455 §7.4.1) for sockets the room ends. */
export const NORMAL_CLOSURE = 1000;
export const POLICY_VIOLATION = 1008;

export interface PublishedTrack {
  sid: string;
  cid: string;
  type: TrackType;
  source: TrackSource;
  name: string;
  muted: boolean;
  width: number;
  height: number;
  stream: string;
  audioFeatures: AudioTrackFeature[];
  disableDtx: boolean;
  disableRed: boolean;
  stereo: boolean;
  encryption: Encryption_Type;
  mimeType: string;
  /** Seen in an offer: from then on, its absence from an offer means it was unpublished
   * (livekit-client sends no signal for an unpublish, only a new offer). */
  announced: boolean;
  /** The peer has answered an offer carrying it; the publisher got track_subscribed. */
  subscribed: boolean;
}

export interface ParkedOffer {
  sdp: string;
  id: number;
  /** The peer's answer with this id went back: the offer needs no delivery any more. */
  answered: boolean;
}

export interface Session {
  sid: string;
  identity: string;
  name: string;
  metadata: string;
  attributes: Record<string, string>;
  grant: Pick<LiveKitGrant, "canPublish" | "canPublishSources" | "canSubscribe" | "canPublishData" | "canUpdateOwnMetadata">;
  /** ms */
  joinedAt: number;
  clientProtocol: number;
  /** ParticipantInfo.version: clients drop an update older than the last one they saw. */
  version: number;
  /** The full join this session's peer connections belong to (the connection that joined). */
  epoch: string;
  /** The socket now carrying the session; absent while it is closed. */
  connection?: string;
  /** The epoch of the peer its connections are paired with. */
  peerEpoch?: string;
  tracks: PublishedTrack[];
  /** The latest publisher offer. */
  offer?: ParkedOffer;
  /** Publisher candidates gathered before there was a peer to give them to. */
  candidates: string[];
  /** The room asked it to rejoin (leave RECONNECT): its leave and close belong to that. */
  restarting?: true;
  /** ms; alone until then, it is told JOIN_FAILURE and removed. */
  waitUntil?: number;
  /** ms; a rejoin (restart) is paired no sooner than this: see LIVEKIT_RESTART_SETTLE_MS. */
  settleUntil?: number;
  /** ms; without a live socket until then (no resume, no rejoin), it is removed. */
  goneUntil?: number;
}

export interface RoomState {
  v: 1;
  name: string;
  /** RM_…; empty while nobody is in the room. */
  sid: string;
  /** ms */
  createdAt: number;
  sessions: Session[];
  /** Identities that left lately: a join of one of them until `until` (ms) is a restart. */
  departed: Array<{ identity: string; until: number }>;
}

export type RoomEvent =
  /** A socket opened /rtc for a fresh join. `freshSid`/`freshRoomSid` are used when new ones are needed. */
  | { type: "join"; connection: string; now: number; grant: LiveKitGrant; clientProtocol: number;
    iceServers: IceServer[]; freshSid: string; freshRoomSid: string }
  /** A socket opened /rtc with reconnect=1&sid=…: the client keeps its peer connections. */
  | { type: "resume"; connection: string; now: number; identity: string; sid: string; iceServers: IceServer[] }
  | { type: "request"; connection: string; now: number; request: SignalRequest["message"]; freshTrackSid: string }
  | { type: "closed"; connection: string; now: number }
  /** The alarm: deadlines up to `now` expire. */
  | { type: "tick"; now: number }
  /** An operator removes one participant, or everyone (RoomService RemoveParticipant, DeleteRoom). */
  | { type: "remove"; now: number; identity?: string; reason: DisconnectReason };

export type RoomEffect =
  | { type: "send"; connection: string; message: SignalResponse["message"] }
  | { type: "close"; connection: string; code: number; reason: string };

export interface RoomTransition {
  state: RoomState;
  effects: RoomEffect[];
}

export function emptyRoom(name = ""): RoomState {
  return { v: 1, name, sid: "", createdAt: 0, sessions: [], departed: [] };
}

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

interface Step {
  room: RoomState;
  effects: RoomEffect[];
  now: number;
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

// ---- pairing ----------------------------------------------------------------------------------

function orphaned(c: Step, session: Session): boolean {
  return session.peerEpoch !== undefined && !c.room.sessions.some((s) => s.epoch === session.peerEpoch);
}

function pairedPeer(c: Step, session: Session): Session | undefined {
  return session.peerEpoch === undefined ? undefined : c.room.sessions.find((s) => s.epoch === session.peerEpoch);
}

/** Orphans rejoin once there is someone to pair with; their tracks go with their connections. */
function restartOrphans(c: Step): void {
  if (c.room.sessions.length < 2) return;
  for (const session of c.room.sessions) {
    if (session.restarting || !orphaned(c, session)) continue;
    session.restarting = true;
    session.goneUntil = c.now + LIVEKIT_RESUME_WINDOW_MS;
    session.tracks = [];
    session.version++;
    if (session.connection) {
      send(c, session.connection, { case: "leave", value: leaveRequest(DisconnectReason.UNKNOWN_REASON, LeaveRequest_Action.RECONNECT) });
    }
  }
}

/** Pairs two unpaired participants, once both have settled.
 *
 * livekit-client 2.23 reports a full reconnect done (RoomEvent.Reconnected) as soon as its new
 * publisher connection is up, but counts the reconnect as pending until 2 s after its rejoin
 * (minReconnectWait), and buffers participant events in between without ever emitting them:
 * a peer's track arriving in that gap never fires TrackSubscribed, so the app never attaches its
 * audio. A rejoining client is therefore paired only once that gap has passed. */
function pairUnpaired(c: Step): void {
  const unpaired = c.room.sessions.filter((s) => !s.restarting && s.peerEpoch === undefined);
  if (unpaired.length < 2 || unpaired.some((s) => s.settleUntil !== undefined && s.settleUntil > c.now)) return;
  const [a, b] = unpaired;
  a.peerEpoch = b.epoch;
  b.peerEpoch = a.epoch;
  for (const s of [a, b]) {
    delete s.waitUntil;
    delete s.settleUntil;
  }
  deliverParked(c, a, b);
  deliverParked(c, b, a);
}

/** Hands `from`'s unanswered offer and parked candidates to `to`, if `to` can hear them. */
function deliverParked(c: Step, from: Session, to: Session): void {
  if (!to.connection) return;
  if (from.offer && !from.offer.answered) relayOffer(c, from, to);
  for (const candidateInit of from.candidates) {
    send(c, to.connection, { case: "trickle", value: create(TrickleRequestSchema, { candidateInit, target: SignalTarget.SUBSCRIBER }) });
  }
  from.candidates = [];
}

/** `from`'s latest offer to `to`'s subscriber connection, after an update that names its tracks:
 * the receiving client drops media of a participant it does not know yet. */
function relayOffer(c: Step, from: Session, to: Session): void {
  const offer = from.offer!;
  const { sdp, midToTrackId } = rewriteMsid(offer.sdp, from.sid, (cid) => from.tracks.find((t) => t.cid === cid)?.sid);
  send(c, to.connection!, update(participantInfo(from)));
  send(c, to.connection!, { case: "offer", value: create(SessionDescriptionSchema, { type: "offer", sdp, id: offer.id, midToTrackId }) });
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

function onOffer(c: Step, session: Session, sd: SessionDescription): void {
  session.offer = { sdp: sd.sdp, id: sd.id, answered: false };
  if (reconcileTracks(session, sd.sdp)) session.version++;
  const peer = pairedPeer(c, session);
  if (peer?.connection && !peer.restarting) relayOffer(c, session, peer);
}

/** Marks the tracks the offer sends as announced and drops announced tracks it no longer sends.
 * Returns whether anything changed. */
function reconcileTracks(session: Session, sdp: string): boolean {
  const sending = new Map<string, string | undefined>();
  for (const section of mediaSections(sdp)) {
    if (section.trackId && (section.direction === "sendonly" || section.direction === "sendrecv")) {
      sending.set(section.trackId, section.mimeType);
    }
  }
  let changedAny = false;
  session.tracks = session.tracks.filter((track) => {
    if (!sending.has(track.cid)) {
      if (track.announced) changedAny = true;
      return !track.announced;
    }
    const mimeType = sending.get(track.cid) ?? track.mimeType;
    if (!track.announced || track.mimeType !== mimeType) changedAny = true;
    track.announced = true;
    track.mimeType = mimeType;
    return true;
  });
  return changedAny;
}

function onAnswer(c: Step, session: Session, sd: SessionDescription): void {
  const peer = pairedPeer(c, session);
  if (!peer) return;
  if (peer.offer?.id === sd.id) peer.offer.answered = true;
  if (!peer.connection || peer.restarting) return;
  send(c, peer.connection, { case: "answer", value: create(SessionDescriptionSchema, { type: "answer", sdp: sd.sdp, id: sd.id }) });
  // The peer's subscriber took the offer: its tracks are subscribed (LocalTrackSubscribed).
  for (const track of peer.tracks) {
    if (!track.announced || track.subscribed) continue;
    track.subscribed = true;
    send(c, peer.connection, { case: "trackSubscribed", value: create(TrackSubscribedSchema, { trackSid: track.sid }) });
  }
}

function onTrickle(c: Step, session: Session, trickle: TrickleRequest): void {
  const peer = pairedPeer(c, session);
  if (peer) {
    if (!peer.connection || peer.restarting) return;
    // What one side's publisher gathers is for the other side's subscriber, and back.
    const target = trickle.target === SignalTarget.PUBLISHER ? SignalTarget.SUBSCRIBER : SignalTarget.PUBLISHER;
    send(c, peer.connection, { case: "trickle", value: create(TrickleRequestSchema, { candidateInit: trickle.candidateInit, target, final: trickle.final }) });
  } else if (session.peerEpoch === undefined && trickle.target === SignalTarget.PUBLISHER
    && session.candidates.length < LIVEKIT_MAX_PARKED_CANDIDATES) {
    session.candidates.push(trickle.candidateInit);
  }
}

function onAddTrack(c: Step, session: Session, req: AddTrackRequest, freshTrackSid: string): void {
  const refuseTrack = (reason: RequestResponse_Reason, message: string) => send(c, session.connection!, {
    case: "requestResponse",
    value: create(RequestResponseSchema, { reason, message, request: { case: "addTrack", value: req } }),
  });
  const { canPublish, canPublishSources } = session.grant;
  if (!canPublish || (canPublishSources.length > 0 && !canPublishSources.includes(req.source))) {
    refuseTrack(RequestResponse_Reason.NOT_ALLOWED, `not allowed to publish ${TrackSource[req.source] ?? req.source}`);
    return;
  }
  let track = session.tracks.find((t) => t.cid === req.cid);
  if (!track) {
    if (session.tracks.length >= LIVEKIT_MAX_TRACKS_PER_PARTICIPANT) {
      refuseTrack(RequestResponse_Reason.LIMIT_EXCEEDED, `at most ${LIVEKIT_MAX_TRACKS_PER_PARTICIPANT} tracks per participant`);
      return;
    }
    track = {
      sid: freshTrackSid, cid: req.cid, type: req.type, source: req.source, name: req.name, muted: req.muted,
      width: req.width, height: req.height, stream: req.stream, audioFeatures: [...req.audioFeatures],
      disableDtx: req.disableDtx, disableRed: req.disableRed, stereo: req.stereo, encryption: req.encryption,
      mimeType: "", announced: false, subscribed: false,
    };
    session.tracks.push(track);
    session.version++;
  }
  send(c, session.connection!, { case: "trackPublished", value: create(TrackPublishedResponseSchema, { cid: req.cid, track: trackInfo(track) }) });
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

/** The session's info changed: everyone in the room, itself included, gets the new version. */
function changed(c: Step, session: Session): void {
  session.version++;
  const info = participantInfo(session);
  for (const other of reachable(c)) send(c, other.connection!, update(info));
}

/** Tells the others in the room about a participant that (re)joined. */
function announce(c: Step, session: Session): void {
  const info = participantInfo(session);
  for (const other of reachable(c)) {
    if (other !== session) send(c, other.connection!, update(info));
  }
}

// ---- helpers ----------------------------------------------------------------------------------

function sessionOn(c: Step, connection: string): Session | undefined {
  return c.room.sessions.find((s) => s.connection === connection);
}

/** Sessions that can hear room news now: a live socket, and no restart under way. */
function reachable(c: Step): Session[] {
  return c.room.sessions.filter((s) => s.connection !== undefined && !s.restarting);
}

function send(c: Step, connection: string, message: SignalResponse["message"]): void {
  c.effects.push({ type: "send", connection, message });
}

function close(c: Step, connection: string, code: number, reason: string): void {
  c.effects.push({ type: "close", connection, code, reason });
}

function update(info: ParticipantInfo): SignalResponse["message"] {
  return { case: "update", value: create(ParticipantUpdateSchema, { participants: [info] }) };
}

function leaveRequest(reason: DisconnectReason, action: LeaveRequest_Action) {
  return create(LeaveRequestSchema, { reason, action, canReconnect: action !== LeaveRequest_Action.DISCONNECT });
}

function serverInfo() {
  return create(ServerInfoSchema, { version: SERVER_VERSION });
}

function iceServer(server: IceServer) {
  return create(ICEServerSchema, { urls: server.urls, username: server.username ?? "", credential: server.credential ?? "" });
}

function roomInfo(room: RoomState) {
  return create(RoomSchema, {
    sid: room.sid,
    name: room.name,
    maxParticipants: LIVEKIT_MAX_PARTICIPANTS,
    creationTime: BigInt(Math.floor(room.createdAt / 1000)),
    creationTimeMs: BigInt(room.createdAt),
    numParticipants: room.sessions.length,
    numPublishers: room.sessions.filter((s) => s.tracks.length > 0).length,
  });
}

function trackInfo(track: PublishedTrack) {
  return create(TrackInfoSchema, {
    sid: track.sid, type: track.type, name: track.name, source: track.source, muted: track.muted,
    width: track.width, height: track.height, stream: track.stream, audioFeatures: track.audioFeatures,
    disableDtx: track.disableDtx, disableRed: track.disableRed, stereo: track.stereo, encryption: track.encryption,
    mimeType: track.mimeType,
    // The receiving browser takes one encoding; there is no SFU to pick simulcast layers.
    simulcast: false,
  });
}

export function participantInfo(session: Session, state = ParticipantInfo_State.ACTIVE): ParticipantInfo {
  return create(ParticipantInfoSchema, {
    sid: session.sid,
    identity: session.identity,
    name: session.name,
    metadata: session.metadata,
    attributes: session.attributes,
    state,
    version: session.version,
    tracks: session.tracks.map(trackInfo),
    permission: create(ParticipantPermissionSchema, {
      canPublish: session.grant.canPublish,
      canPublishSources: session.grant.canPublishSources,
      canSubscribe: session.grant.canSubscribe,
      canPublishData: session.grant.canPublishData,
      canUpdateMetadata: session.grant.canUpdateOwnMetadata,
    }),
    joinedAt: BigInt(Math.floor(session.joinedAt / 1000)),
    joinedAtMs: BigInt(session.joinedAt),
    isPublisher: session.tracks.length > 0,
    clientProtocol: session.clientProtocol,
  });
}

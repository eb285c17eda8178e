// A LiveKit room's state, the events that move it and the effects they ask for, and the context a
// transition writes its effects into (model/livekit-model.ts `step`). Pure data: no sockets, no clock.
import type { AudioTrackFeature, DisconnectReason, Encryption_Type, TrackSource, TrackType } from "../proto/gen/livekit_models_pb";
import type { SignalRequest, SignalResponse } from "../proto/gen/livekit_rtc_pb";
import type { IceServer } from "./ice-servers";
import type { LiveKitGrant } from "./livekit-grant";

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

/** One transition under way: the room as it becomes, the effects so far, and the event's time. */
export interface Step {
  room: RoomState;
  effects: RoomEffect[];
  now: number;
}

export function sessionOn(c: Step, connection: string): Session | undefined {
  return c.room.sessions.find((s) => s.connection === connection);
}

/** Sessions that can hear room news now: a live socket, and no restart under way. */
export function reachable(c: Step): Session[] {
  return c.room.sessions.filter((s) => s.connection !== undefined && !s.restarting);
}

export function send(c: Step, connection: string, message: SignalResponse["message"]): void {
  c.effects.push({ type: "send", connection, message });
}

export function close(c: Step, connection: string, code: number, reason: string): void {
  c.effects.push({ type: "close", connection, code, reason });
}

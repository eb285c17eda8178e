// The LiveKit wire messages a room builds from its state (livekit_models / livekit_rtc protobuf):
// participant, track, room and server info, updates and leaves, shaped as livekit-server sends them.
import { create } from "@bufbuild/protobuf";
import {
  ParticipantInfo_State, ParticipantInfoSchema, ParticipantPermissionSchema, RoomSchema, ServerInfoSchema, TrackInfoSchema,
  type DisconnectReason, type ParticipantInfo,
} from "../proto/gen/livekit_models_pb";
import {
  ICEServerSchema, LeaveRequest_Action, LeaveRequestSchema, ParticipantUpdateSchema, type SignalResponse,
} from "../proto/gen/livekit_rtc_pb";
import type { IceServer } from "./ice-servers";
import { LIVEKIT_MAX_PARTICIPANTS } from "./limits";
import type { PublishedTrack, RoomState, Session } from "./livekit-state";

/** The livekit-server version the JoinResponse reports. livekit-client refuses a server without
 * one and allows RPC only from 1.8.0; up to 1.13.6 it publishes VP9/AV1 as one SVC encoding
 * rather than rid simulcast, which a browser receiving peer to peer decodes in full. */
export const SERVER_VERSION = "1.9.0";

export function update(info: ParticipantInfo): SignalResponse["message"] {
  return { case: "update", value: create(ParticipantUpdateSchema, { participants: [info] }) };
}

export function leaveRequest(reason: DisconnectReason, action: LeaveRequest_Action) {
  return create(LeaveRequestSchema, { reason, action, canReconnect: action !== LeaveRequest_Action.DISCONNECT });
}

export function serverInfo() {
  return create(ServerInfoSchema, { version: SERVER_VERSION });
}

export function iceServer(server: IceServer) {
  return create(ICEServerSchema, { urls: server.urls, username: server.username ?? "", credential: server.credential ?? "" });
}

export function roomInfo(room: RoomState) {
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

export function trackInfo(track: PublishedTrack) {
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

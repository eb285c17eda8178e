// Operator events and rooms (model/operator-events.ts) in LiveKit's wire shapes: Room,
// ParticipantInfo and WebhookEvent, as protojson writes them (lowerCamelCase, int64 as strings,
// enums by name, empty fields left out), which is what livekit-server sends and its SDKs read.
import { create, toJsonString } from "@bufbuild/protobuf";
import {
  DisconnectReason, ParticipantInfo_Kind, ParticipantInfo_State, ParticipantInfoSchema, RoomSchema,
  type ParticipantInfo, type Room,
} from "../proto/gen/livekit_models_pb";
import { WebhookEventSchema } from "../proto/gen/livekit_webhook_pb";
import type { LeaveReason, OperatorEvent, OperatorParticipant, OperatorRoom } from "../model/operator-events";

const REASONS: Readonly<Record<LeaveReason, DisconnectReason>> = {
  client_initiated: DisconnectReason.CLIENT_INITIATED,
  participant_removed: DisconnectReason.PARTICIPANT_REMOVED,
  room_deleted: DisconnectReason.ROOM_DELETED,
  signal_close: DisconnectReason.SIGNAL_CLOSE,
  connection_timeout: DisconnectReason.CONNECTION_TIMEOUT,
  join_failure: DisconnectReason.JOIN_FAILURE,
  unknown: DisconnectReason.UNKNOWN_REASON,
};

export function roomMessage(room: OperatorRoom): Room {
  return create(RoomSchema, {
    sid: room.sid, name: room.name, metadata: room.metadata, numParticipants: room.numParticipants,
    creationTime: BigInt(Math.floor(room.createdAt / 1000)), creationTimeMs: BigInt(room.createdAt),
  });
}

export function participantMessage(participant: OperatorParticipant): ParticipantInfo {
  return create(ParticipantInfoSchema, {
    sid: participant.sid, identity: participant.identity, name: participant.name, metadata: participant.metadata,
    joinedAt: BigInt(Math.floor(participant.joinedAt / 1000)), joinedAtMs: BigInt(participant.joinedAt),
    kind: participant.kind === "sip" ? ParticipantInfo_Kind.SIP : ParticipantInfo_Kind.STANDARD,
    state: participant.state === "active" ? ParticipantInfo_State.ACTIVE : ParticipantInfo_State.DISCONNECTED,
    disconnectReason: participant.disconnectReason ? REASONS[participant.disconnectReason] : DisconnectReason.UNKNOWN_REASON,
  });
}

/** The body of a webhook POST: one WebhookEvent as JSON. `id` is the event's, the same on every retry. */
export function webhookBody(event: OperatorEvent, id: string): string {
  return toJsonString(WebhookEventSchema, create(WebhookEventSchema, {
    event: event.event, id, createdAt: BigInt(Math.floor(event.at / 1000)),
    room: roomMessage(event.room),
    ...(event.participant ? { participant: participantMessage(event.participant) } : {}),
  }));
}

/** A new event id, as livekit-server makes them (protocol/utils/guid: "EV_" and 12 random characters). */
export function newEventId(): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  return "EV_" + Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => alphabet[b % alphabet.length]).join("");
}

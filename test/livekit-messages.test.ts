// The LiveKit wire messages a room builds from its state (model/livekit-messages.ts).
import { describe, expect, it } from "vitest";
import { iceServer, leaveRequest, participantInfo, roomInfo, trackInfo } from "../model/livekit-messages";
import type { PublishedTrack, RoomState, Session } from "../model/livekit-state";
import {
  AudioTrackFeature, DisconnectReason, Encryption_Type, ParticipantInfo_State, TrackSource, TrackType,
} from "../proto/gen/livekit_models_pb";
import { LeaveRequest_Action } from "../proto/gen/livekit_rtc_pb";

const JOINED_AT = 1_700_000_000_123;

const mic: PublishedTrack = {
  sid: "TR_1", cid: "mic", type: TrackType.AUDIO, source: TrackSource.MICROPHONE, name: "microphone", muted: false,
  width: 0, height: 0, stream: "camera", audioFeatures: [AudioTrackFeature.TF_STEREO], disableDtx: false, disableRed: false,
  stereo: true, encryption: Encryption_Type.NONE, mimeType: "audio/opus", announced: true, subscribed: false,
};

const alice: Session = {
  sid: "PA_alice", identity: "alice", name: "Alice", metadata: "m", attributes: { k: "v" },
  grant: { canPublish: true, canPublishSources: [TrackSource.MICROPHONE], canSubscribe: true, canPublishData: false, canUpdateOwnMetadata: true },
  joinedAt: JOINED_AT, clientProtocol: 2, version: 3, epoch: "a1", connection: "a1", tracks: [mic], candidates: [],
};

describe("participantInfo", () => {
  it("carries the session's identity, version, grant and join time in seconds and milliseconds", () => {
    const info = participantInfo(alice);
    expect(info).toMatchObject({
      sid: "PA_alice", identity: "alice", name: "Alice", metadata: "m", attributes: { k: "v" },
      state: ParticipantInfo_State.ACTIVE, version: 3, isPublisher: true, clientProtocol: 2,
      joinedAt: 1_700_000_000n, joinedAtMs: 1_700_000_000_123n,
      permission: { canPublish: true, canPublishSources: [TrackSource.MICROPHONE], canSubscribe: true, canPublishData: false, canUpdateMetadata: true },
    });
    expect(info.tracks.map((t) => t.sid)).toEqual(["TR_1"]);
  });

  it("is no publisher without tracks, and takes the state it is given", () => {
    const info = participantInfo({ ...alice, tracks: [] }, ParticipantInfo_State.DISCONNECTED);
    expect(info.isPublisher).toBe(false);
    expect(info.state).toBe(ParticipantInfo_State.DISCONNECTED);
  });
});

describe("trackInfo", () => {
  it("describes the published track without simulcast: a peer takes one encoding", () => {
    expect(trackInfo(mic)).toMatchObject({
      sid: "TR_1", type: TrackType.AUDIO, source: TrackSource.MICROPHONE, name: "microphone", stereo: true,
      audioFeatures: [AudioTrackFeature.TF_STEREO], mimeType: "audio/opus", simulcast: false,
    });
  });
});

describe("roomInfo", () => {
  it("counts participants and publishers, with two places at most", () => {
    const room: RoomState = { v: 1, name: "room-1", sid: "RM_1", createdAt: JOINED_AT, departed: [],
      sessions: [alice, { ...alice, sid: "PA_bob", identity: "bob", tracks: [] }] };
    expect(roomInfo(room)).toMatchObject({
      sid: "RM_1", name: "room-1", maxParticipants: 2, numParticipants: 2, numPublishers: 1,
      creationTime: 1_700_000_000n, creationTimeMs: 1_700_000_000_123n,
    });
  });
});

describe("leaveRequest", () => {
  it("lets the client reconnect unless it is told to disconnect", () => {
    expect(leaveRequest(DisconnectReason.UNKNOWN_REASON, LeaveRequest_Action.RECONNECT).canReconnect).toBe(true);
    expect(leaveRequest(DisconnectReason.JOIN_FAILURE, LeaveRequest_Action.DISCONNECT)).toMatchObject({
      reason: DisconnectReason.JOIN_FAILURE, action: LeaveRequest_Action.DISCONNECT, canReconnect: false,
    });
  });
});

describe("iceServer", () => {
  it("sends empty credentials for a server that has none", () => {
    expect(iceServer({ urls: ["stun:stun.example.com:3478"] })).toMatchObject({ urls: ["stun:stun.example.com:3478"], username: "", credential: "" });
  });
});

// What a LiveKit participant publishes (model/livekit-tracks.ts, driven through `step`): tracks
// added, announced by offers, subscribed by the peer's answer, muted, refused by its grant.
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { TrackSource, TrackType } from "../proto/gen/livekit_models_pb";
import { MuteTrackRequestSchema, PublishDataTrackRequestSchema, RequestResponse_Reason } from "../proto/gen/livekit_rtc_pb";
import { ANSWER, DATA_OFFER, grantFor, MIC_CID, micOffer } from "./livekit-fixtures";
import { addMic, answer, offer, pairedRoom, publishingRoom, Room } from "./livekit-room-driver";

describe("livekit room: tracks", () => {
  it("answers add_track with track_published carrying the cid and a TR_ sid", () => {
    const room = pairedRoom();
    room.send("a1", addMic());
    const published = room.first("a1", "trackPublished");
    expect(published.cid).toBe(MIC_CID);
    expect(published.track).toMatchObject({ sid: expect.stringMatching(/^TR_/), type: TrackType.AUDIO, source: TrackSource.MICROPHONE, name: "microphone" });
  });

  it("answers a repeated add_track for the same cid with the same track sid", () => {
    const room = pairedRoom();
    room.send("a1", addMic());
    const sid = room.first("a1", "trackPublished").track?.sid;
    room.send("a1", addMic());
    expect(room.first("a1", "trackPublished").track?.sid).toBe(sid);
  });

  it("rewrites the relayed offer's msid to the publisher's sid and the track sid", () => {
    const room = publishingRoom();
    const { sid } = room.session("alice")!;
    const trackSid = room.session("alice")!.tracks[0].sid;
    const relayed = room.first("b1", "offer");
    expect(relayed.sdp).toContain(`a=msid:${sid}|${trackSid} ${trackSid}`);
    expect(relayed.midToTrackId).toEqual({ 1: trackSid });
  });

  it("names the new track in the update sent before the offer that carries it", () => {
    const room = publishingRoom();
    expect(room.cases("b1")).toEqual(["update", "offer"]);
    expect(room.first("b1", "update").participants[0].tracks).toMatchObject([{ sid: room.session("alice")!.tracks[0].sid, mimeType: "audio/opus" }]);
  });

  it("drops a track from the participant's info once an offer no longer sends it", () => {
    const room = publishingRoom();
    room.send("b1", answer(ANSWER, 2));
    room.send("a1", offer(micOffer(MIC_CID, "inactive"), 3));
    expect(room.first("b1", "update").participants[0].tracks).toEqual([]);
  });

  it("keeps a track published but not yet in any offer", () => {
    const room = pairedRoom();
    room.send("a1", addMic());
    room.send("a1", offer(DATA_OFFER, 2));
    expect(room.session("alice")!.tracks).toHaveLength(1);
  });

  it("sends the publisher track_subscribed when the peer answers the offer carrying the track", () => {
    const room = publishingRoom();
    room.send("b1", answer(ANSWER, 2));
    expect(room.first("a1", "trackSubscribed").trackSid).toBe(room.session("alice")!.tracks[0].sid);
  });

  it("refuses add_track from a participant without canPublish with request_response NOT_ALLOWED", () => {
    const room = new Room();
    room.join("a1", grantFor("alice", "room-1", { canPublish: false }));
    room.send("a1", addMic());
    expect(room.first("a1", "requestResponse")).toMatchObject({ reason: RequestResponse_Reason.NOT_ALLOWED, request: { case: "addTrack" } });
    expect(room.session("alice")!.tracks).toEqual([]);
  });

  it("refuses add_track of a source outside canPublishSources", () => {
    const room = new Room();
    room.join("a1", grantFor("alice", "room-1", { canPublishSources: [TrackSource.CAMERA] }));
    room.send("a1", addMic());
    expect(room.first("a1", "requestResponse").reason).toBe(RequestResponse_Reason.NOT_ALLOWED);
  });

  it("tells both participants about a mute with a higher version", () => {
    const room = publishingRoom();
    const { version } = room.session("alice")!;
    room.send("a1", { case: "mute", value: create(MuteTrackRequestSchema, { sid: room.session("alice")!.tracks[0].sid, muted: true }) });
    for (const connection of ["a1", "b1"]) {
      const info = room.first(connection, "update").participants[0];
      expect(info.tracks[0].muted).toBe(true);
      expect(info.version).toBeGreaterThan(version);
    }
  });

  it("answers a data track publish with UNSUPPORTED_TYPE", () => {
    const room = pairedRoom();
    room.send("a1", { case: "publishDataTrackRequest", value: create(PublishDataTrackRequestSchema, { pubHandle: 1, name: "t" }) });
    expect(room.first("a1", "requestResponse")).toMatchObject({ reason: RequestResponse_Reason.UNSUPPORTED_TYPE, request: { case: "publishDataTrack" } });
  });
});

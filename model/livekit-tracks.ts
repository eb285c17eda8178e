// What a LiveKit participant publishes, peer to peer: its offers and answers relayed to its peer,
// its trickled candidates (parked while it has no peer), and its tracks, announced by the offers
// that carry them. Parts of `step` (model/livekit-model.ts).
import { create } from "@bufbuild/protobuf";
import { TrackSource } from "../proto/gen/livekit_models_pb";
import {
  RequestResponse_Reason, RequestResponseSchema, SessionDescriptionSchema, SignalTarget, TrackPublishedResponseSchema,
  TrackSubscribedSchema, TrickleRequestSchema, type AddTrackRequest, type SessionDescription, type TrickleRequest,
} from "../proto/gen/livekit_rtc_pb";
import { mediaSections } from "../codecs/livekit-sdp";
import { LIVEKIT_MAX_PARKED_CANDIDATES, LIVEKIT_MAX_TRACKS_PER_PARTICIPANT } from "./limits";
import { participantInfo, trackInfo, update } from "./livekit-messages";
import { pairedPeer, relayOffer } from "./livekit-pairing";
import { reachable, send, type Session, type Step } from "./livekit-state";

export function onOffer(c: Step, session: Session, sd: SessionDescription): void {
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

export function onAnswer(c: Step, session: Session, sd: SessionDescription): void {
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

export function onTrickle(c: Step, session: Session, trickle: TrickleRequest): void {
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

export function onAddTrack(c: Step, session: Session, req: AddTrackRequest, freshTrackSid: string): void {
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

/** The session's info changed: everyone in the room, itself included, gets the new version. */
export function changed(c: Step, session: Session): void {
  session.version++;
  const info = participantInfo(session);
  for (const other of reachable(c)) send(c, other.connection!, update(info));
}

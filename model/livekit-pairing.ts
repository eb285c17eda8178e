// Pairing in a LiveKit room: two participants' peer connections joined crosswise, parked offers and
// candidates handed over once there is a peer, and orphans (whose peer's connections are gone)
// asked to rejoin. Parts of `step` (model/livekit-model.ts).
import { create } from "@bufbuild/protobuf";
import { DisconnectReason } from "../proto/gen/livekit_models_pb";
import { LeaveRequest_Action, SessionDescriptionSchema, SignalTarget, TrickleRequestSchema } from "../proto/gen/livekit_rtc_pb";
import { rewriteMsid } from "../codecs/livekit-sdp";
import { LIVEKIT_RESUME_WINDOW_MS } from "./limits";
import { leaveRequest, participantInfo, update } from "./livekit-messages";
import { send, type Session, type Step } from "./livekit-state";

export function orphaned(c: Step, session: Session): boolean {
  return session.peerEpoch !== undefined && !c.room.sessions.some((s) => s.epoch === session.peerEpoch);
}

export function pairedPeer(c: Step, session: Session): Session | undefined {
  return session.peerEpoch === undefined ? undefined : c.room.sessions.find((s) => s.epoch === session.peerEpoch);
}

/** Orphans rejoin once there is someone to pair with; their tracks go with their connections. */
export function restartOrphans(c: Step): void {
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
export function pairUnpaired(c: Step): void {
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
export function deliverParked(c: Step, from: Session, to: Session): void {
  if (!to.connection) return;
  if (from.offer && !from.offer.answered) relayOffer(c, from, to);
  for (const candidateInit of from.candidates) {
    send(c, to.connection, { case: "trickle", value: create(TrickleRequestSchema, { candidateInit, target: SignalTarget.SUBSCRIBER }) });
  }
  from.candidates = [];
}

/** `from`'s latest offer to `to`'s subscriber connection, after an update that names its tracks:
 * the receiving client drops media of a participant it does not know yet. */
export function relayOffer(c: Step, from: Session, to: Session): void {
  const offer = from.offer!;
  const { sdp, midToTrackId } = rewriteMsid(offer.sdp, from.sid, (cid) => from.tracks.find((t) => t.cid === cid)?.sid);
  send(c, to.connection!, update(participantInfo(from)));
  send(c, to.connection!, { case: "offer", value: create(SessionDescriptionSchema, { type: "offer", sdp, id: offer.id, midToTrackId }) });
}

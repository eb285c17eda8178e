// The SDP work of relaying a LiveKit publisher's offer to the other participant's subscriber
// connection without an SFU in between.
//
// livekit-client maps an incoming track by its MediaStream id, which it splits as
// "<participant sid>|<track sid>" (utils.ts `unpackStreamId`), and drops a track whose stream
// names no participant it knows. A browser's offer carries its own ids instead: the stream id of
// the local MediaStream and the MediaStreamTrack id, which is the `cid` of AddTrackRequest. So
// every forwarded offer has its `a=msid:` lines rewritten to what livekit-server's forwarder
// writes (`PackStreamID`): `a=msid:PA_x|TR_y TR_y`.

/** One m= section of an SDP, as far as the relay cares. */
export interface MediaSection {
  kind: string;
  mid: string;
  /** sendrecv, sendonly, recvonly or inactive; a rejected section (port 0) is inactive. */
  direction: string;
  /** The MediaStreamTrack id from `a=msid:<stream> <track>`: the publisher's track cid. */
  trackId?: string;
  /** `<kind>/<encoding name>` of the section's first payload type, e.g. "audio/opus". */
  mimeType?: string;
}

const DIRECTIONS: ReadonlySet<string> = new Set(["sendrecv", "sendonly", "recvonly", "inactive"]);

function linesOf(sdp: string): { lines: string[]; eol: string } {
  const eol = sdp.includes("\r\n") ? "\r\n" : "\n";
  return { lines: sdp.split(eol), eol };
}

/** The media sections of `sdp`, in order. */
export function mediaSections(sdp: string): MediaSection[] {
  const sections: MediaSection[] = [];
  let sessionDirection = "sendrecv";
  let current: (MediaSection & { payloadType?: string; rejected: boolean }) | undefined;
  const finish = () => {
    if (!current) return;
    const { payloadType: _pt, rejected, ...section } = current;
    sections.push(rejected ? { ...section, direction: "inactive" } : section);
  };
  for (const line of linesOf(sdp).lines) {
    const m = /^m=(\S+) (\d+) \S+ ?(\S*)/.exec(line);
    if (m) {
      finish();
      current = { kind: m[1], mid: "", direction: sessionDirection, payloadType: m[3] || undefined, rejected: m[2] === "0" };
      continue;
    }
    const attribute = line.startsWith("a=") ? line.slice(2) : undefined;
    if (attribute === undefined) continue;
    if (DIRECTIONS.has(attribute)) {
      if (current) current.direction = attribute;
      else sessionDirection = attribute;
    } else if (current) {
      if (attribute.startsWith("mid:")) current.mid = attribute.slice(4);
      const msid = /^msid:\S+ (\S+)$/.exec(attribute);
      if (msid) current.trackId = msid[1];
      const rtpmap = /^rtpmap:(\S+) ([^/\s]+)/.exec(attribute);
      if (rtpmap && rtpmap[1] === current.payloadType) current.mimeType = `${current.kind}/${rtpmap[2]}`;
    }
  }
  finish();
  return sections;
}

/**
 * Rewrites the `a=msid:` and `a=ssrc:<n> msid:` lines of a publisher's offer so that the
 * receiving livekit-client attributes each track to `participantSid` and the track sid that
 * `trackSidOf` gives for its cid. Lines whose cid has no track sid are left as they are.
 * Also returns mid → track sid, for SessionDescription.mid_to_track_id (the client's fallback
 * when a stream id does not name a track).
 */
export function rewriteMsid(sdp: string, participantSid: string, trackSidOf: (cid: string) => string | undefined):
  { sdp: string; midToTrackId: Record<string, string> } {
  const { lines, eol } = linesOf(sdp);
  const midToTrackId: Record<string, string> = {};
  let mid: string | undefined;
  let pendingTrackSid: string | undefined;
  const rewritten = lines.map((line) => {
    if (line.startsWith("m=")) {
      mid = undefined;
      pendingTrackSid = undefined;
      return line;
    }
    if (line.startsWith("a=mid:")) {
      mid = line.slice(6);
      if (pendingTrackSid) midToTrackId[mid] = pendingTrackSid;
      return line;
    }
    const msid = /^a=msid:\S+ (\S+)$/.exec(line);
    if (msid) {
      const trackSid = trackSidOf(msid[1]);
      if (!trackSid) return line;
      if (mid !== undefined) midToTrackId[mid] = trackSid;
      else pendingTrackSid = trackSid;
      return `a=msid:${participantSid}|${trackSid} ${trackSid}`;
    }
    const ssrc = /^a=ssrc:(\d+) msid:\S+ (\S+)$/.exec(line);
    if (ssrc) {
      const trackSid = trackSidOf(ssrc[2]);
      return trackSid ? `a=ssrc:${ssrc[1]} msid:${participantSid}|${trackSid} ${trackSid}` : line;
    }
    return line;
  });
  return { sdp: rewritten.join(eol), midToTrackId };
}

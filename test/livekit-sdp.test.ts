// The msid rewrite of relayed LiveKit offers, on SDP as Chrome writes it.
import { describe, expect, it } from "vitest";
import { mediaSections, rewriteMsid } from "../codecs/livekit-sdp";
import { MIC_CID, micOffer, STREAM_ID } from "./livekit-fixtures";

const CID = MIC_CID;
const STREAM = STREAM_ID;
const CHROME_OFFER = micOffer();

const knownCid = (cid: string) => (cid === CID ? "TR_AMic" : undefined);

describe("livekit sdp: rewriteMsid", () => {
  it("rewrites the a=msid line of a known cid to participant sid | track sid", () => {
    const { sdp } = rewriteMsid(CHROME_OFFER, "PA_alice", knownCid);
    expect(sdp).toContain("\r\na=msid:PA_alice|TR_AMic TR_AMic\r\n");
    expect(sdp).not.toContain(`a=msid:${STREAM}`);
  });

  it("rewrites the a=ssrc msid line of a known cid the same way", () => {
    const { sdp } = rewriteMsid(CHROME_OFFER, "PA_alice", knownCid);
    expect(sdp).toContain("\r\na=ssrc:1791744322 msid:PA_alice|TR_AMic TR_AMic\r\n");
  });

  it("leaves the lines of a cid without a track sid unchanged", () => {
    const { sdp, midToTrackId } = rewriteMsid(CHROME_OFFER, "PA_alice", () => undefined);
    expect(sdp).toBe(CHROME_OFFER);
    expect(midToTrackId).toEqual({});
  });

  it("maps the mid of each rewritten section to its track sid", () => {
    expect(rewriteMsid(CHROME_OFFER, "PA_alice", knownCid).midToTrackId).toEqual({ 1: "TR_AMic" });
  });

  it("maps the mid when the msid line comes before the mid line", () => {
    const reordered = CHROME_OFFER.replace("a=mid:1\r\na=sendonly\r\n" + `a=msid:${STREAM} ${CID}\r\n`,
      `a=msid:${STREAM} ${CID}\r\na=sendonly\r\na=mid:1\r\n`);
    expect(rewriteMsid(reordered, "PA_alice", knownCid).midToTrackId).toEqual({ 1: "TR_AMic" });
  });

  it("keeps LF-only line endings as they are", () => {
    const lf = CHROME_OFFER.replaceAll("\r\n", "\n");
    expect(rewriteMsid(lf, "PA_alice", knownCid).sdp).toContain("\na=msid:PA_alice|TR_AMic TR_AMic\n");
  });
});

describe("livekit sdp: mediaSections", () => {
  it("lists each section's kind, mid, direction, track id and first codec", () => {
    expect(mediaSections(CHROME_OFFER)).toEqual([
      { kind: "application", mid: "0", direction: "sendrecv" },
      { kind: "audio", mid: "1", direction: "sendonly", trackId: CID, mimeType: "audio/opus" },
    ]);
  });

  it("reports a rejected section (port 0) as inactive", () => {
    const rejected = CHROME_OFFER.replace("m=audio 9 ", "m=audio 0 ");
    expect(mediaSections(rejected)[1].direction).toBe("inactive");
  });

  it("takes a session-level direction for sections without their own", () => {
    const sessionLevel = CHROME_OFFER.replace("t=0 0\r\n", "t=0 0\r\na=recvonly\r\n").replace("a=sendonly\r\n", "");
    expect(mediaSections(sessionLevel)[1].direction).toBe("recvonly");
  });
});

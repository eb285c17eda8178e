// Shared inputs of the LiveKit tests: SDP as Chrome writes it for livekit-client, grants, and
// tokens minted by livekit-server-sdk exactly as a LiveKit app mints them.
import { AccessToken, type VideoGrant } from "livekit-server-sdk";
import type { LiveKitGrant } from "../model/livekit-grant";
import { TEST_LIVEKIT_API_KEY, TEST_LIVEKIT_API_SECRET } from "./test-secret";

export const STREAM_ID = "e9488407-1b2c-4d3e-8f90-a1b2c3d4e5f6";
export const MIC_CID = "b1b864de-6a0d-4c44-9d6e-2b0c1d2e3f40";

const HEADER = ["v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", "s=-", "t=0 0"];
const DATA_SECTION = ["m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "c=IN IP4 0.0.0.0", "a=ice-ufrag:mHa9", "a=mid:0", "a=sctp-port:5000"];
const audioSection = (cid: string, direction = "sendonly") => [
  "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8", "c=IN IP4 0.0.0.0", "a=mid:1", `a=${direction}`,
  `a=msid:${STREAM_ID} ${cid}`, "a=rtpmap:111 opus/48000/2", "a=rtpmap:63 red/48000/2",
  "a=ssrc:1791744322 cname:abc", `a=ssrc:1791744322 msid:${STREAM_ID} ${cid}`,
];

/** livekit-client's first publisher offer: data channels only. */
export const DATA_OFFER = [...HEADER, "a=group:BUNDLE 0", ...DATA_SECTION, ""].join("\r\n");

/** A publisher offer after a microphone publish (`direction` inactive after an unpublish). */
export const micOffer = (cid = MIC_CID, direction = "sendonly") =>
  [...HEADER, "a=group:BUNDLE 0 1", `a=msid-semantic: WMS ${STREAM_ID}`, ...DATA_SECTION, ...audioSection(cid, direction), ""].join("\r\n");

export const ANSWER = [...HEADER, ...DATA_SECTION, ""].join("\r\n");

export const CANDIDATE = JSON.stringify({
  candidate: "candidate:2937725320 1 udp 2122194687 192.0.2.2 43530 typ host generation 0 ufrag mHa9 network-id 1",
  sdpMid: "0", sdpMLineIndex: 0, usernameFragment: "mHa9",
});

export function grantFor(identity: string, room = "room-1", overrides: Partial<LiveKitGrant> = {}): LiveKitGrant {
  return {
    identity, room, name: identity.toUpperCase(), metadata: "", attributes: {},
    canPublish: true, canPublishSources: [], canSubscribe: true, canPublishData: true, canUpdateOwnMetadata: false,
    ...overrides,
  };
}

/** A token as `new AccessToken(key, secret, {identity, ...}).toJwt()` makes it. */
export async function liveKitToken(identity: string, room: string, options: {
  grant?: Partial<VideoGrant>; ttl?: number | string; name?: string; metadata?: string;
  attributes?: Record<string, string>; key?: string; secret?: string;
} = {}): Promise<string> {
  const token = new AccessToken(options.key ?? TEST_LIVEKIT_API_KEY, options.secret ?? TEST_LIVEKIT_API_SECRET, {
    identity, ttl: options.ttl, name: options.name, metadata: options.metadata, attributes: options.attributes,
  });
  token.addGrant({ roomJoin: true, room, ...options.grant });
  return token.toJwt();
}

// What the benchmarks' clients put in their offers, answers and candidates. Every server under test
// (this Worker, the Node baselines, PeerJS) carries SDP and candidates without reading them, so
// only their size has to be realistic: these are the size of an audio-only browser offer/answer
// (Chrome's codec list) and of the candidates a browser trickles.
// Bearer tokens are the ones `npm run token` prints: scripts/dev-token.mjs signToken.

function sdp(kind) {
  const lines = ["v=0", `o=- 46117317${kind === "offer" ? 1 : 2} 2 IN IP4 127.0.0.1`, "s=-", "t=0 0", "a=group:BUNDLE 0",
    "a=extmap-allow-mixed", "a=msid-semantic: WMS bench", "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
    "c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0", "a=ice-ufrag:bEnC", "a=ice-pwd:0123456789abcdefghijklmn",
    "a=ice-options:trickle", "a=fingerprint:sha-256 " + Array.from({ length: 32 }, (_, i) => (i * 7 % 256).toString(16).padStart(2, "0").toUpperCase()).join(":"),
    `a=setup:${kind === "offer" ? "actpass" : "active"}`, "a=mid:0", "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", "a=sendrecv", "a=msid:bench track0", "a=rtcp-mux",
    "a=rtpmap:111 opus/48000/2", "a=rtcp-fb:111 transport-cc", "a=fmtp:111 minptime=10;useinbandfec=1",
    "a=rtpmap:63 red/48000/2", "a=fmtp:63 111/111", "a=rtpmap:9 G722/8000", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:13 CN/8000", "a=rtpmap:110 telephone-event/48000", "a=rtpmap:126 telephone-event/8000", "a=ssrc:1001 cname:benchcname"];
  return lines.join("\r\n") + "\r\n";
}

export const OFFER_SDP = sdp("offer");
export const ANSWER_SDP = sdp("answer");

/** One server-reflexive candidate as a browser's RTCIceCandidate.toJSON() gives it. */
export const CANDIDATE = {
  candidate: "candidate:842163049 1 udp 1677729535 203.0.113.7 61665 typ srflx raddr 192.168.1.10 rport 61665 generation 0 ufrag bEnC network-cost 999",
  sdpMid: "0", sdpMLineIndex: 0, usernameFragment: "bEnC",
};

/** The `n`th host candidate of the caller's or the callee's side: distinct, so each one can be
 * checked on arrival. */
export const hostCandidate = (side, n) => `candidate:${n} 1 udp 2122260223 10.${side === "caller" ? 1 : 2}.0.${n} ${50000 + n} typ host`;

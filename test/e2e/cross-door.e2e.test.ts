// One call, any door: a Viam SignalingService.Call from `alice` to host `bob` is answered by
// `bob` on protocol.voice.v1.VoiceService.Connect, through `wrangler dev`. Both ends are real
// @roamhq/wrtc peers (audio sendrecv + a data channel) on HTTP/1.1 clients — the Voice stream is
// a Connect bidi stream, so this also proves full-duplex bidi over HTTP/1.1.
import { afterEach, describe, expect, it } from "vitest";
import { answerAsVoice, callFromViam, type SdpEncoding, type ViamCaller, type VoiceAnswerer } from "./cross-door-clients";
import { decodeSdp, encodeSdp } from "./viam-host-answerer";
import { baseUrl, tokenFor } from "./server";


const CALLER = "alice";
const HOST = "bob";

const token = (sub: string) => tokenFor(sub);

let abort = new AbortController();
const opened: Array<ViamCaller | VoiceAnswerer> = [];

afterEach(() => {
  // Also releases `bob` if a test failed mid-call, so the next test's Call is not handed to it.
  abort.abort();
  abort = new AbortController();
  for (const end of opened.splice(0)) end.peer.pc.close();
});

/** Puts `bob` online on the Voice door, then calls it from `alice` on the Viam door. */
async function crossDoorCall(encoding: SdpEncoding) {
  const voice = answerAsVoice({ baseUrl, token: await token(HOST), signal: abort.signal });
  opened.push(voice);
  const viam = await callFromViam({ baseUrl, token: await token(CALLER), host: HOST, encoding, signal: abort.signal });
  opened.push(viam);
  return { viam, voice };
}

/** Resolves with the time `p` settled successfully. */
const settledAt = (p: Promise<unknown>) => p.then(() => performance.now());

describe("one call, any door: a Viam caller and a Voice answerer", () => {
  for (const encoding of ["plain", "viam"] as const) {
    it(`connects a ${encoding}-SDP Viam Call to a Voice client, and bytes cross the data channel both ways`, async () => {
      const { viam, voice } = await crossDoorCall(encoding);
      const doneSentAt = settledAt(viam.doneSending);
      const voiceEndedAt = settledAt(voice.ended);

      // The Voice client always sees plain SDP: the caller's exact offer, decoded if Viam-encoded.
      const offerSdp = encoding === "viam" ? decodeSdp(viam.offer).sdp! : viam.offer;
      expect(await voice.offer).toBe(offerSdp);
      expect(offerSdp).toMatch(/^v=0\r\n/);
      expect(offerSdp).toMatch(/m=audio [^]*a=sendrecv/);
      expect(offerSdp).toMatch(/m=application .* webrtc-datachannel/);
      // …and its plain answer reaches the caller in the caller's own encoding.
      const answerSdp = await voice.answer;
      expect(answerSdp).toMatch(/m=audio [^]*a=sendrecv/);
      expect(await viam.answer).toBe(encoding === "viam"
        ? encodeSdp({ type: "answer", sdp: answerSdp })
        : answerSdp);

      await Promise.all([viam.peer.connected, voice.peer.connected]);
      expect(viam.peer.pc.connectionState).toBe("connected");
      expect(voice.peer.pc.connectionState).toBe("connected");
      await Promise.all([viam.peer.dataOpen, voice.peer.dataOpen]);

      const toBob = Uint8Array.from({ length: 1500 }, (_, i) => (i * 37 + 11) & 0xff);
      const toAlice = new Uint8Array([0, 255, 1, 254, 128, 127, ...new TextEncoder().encode(`hello alice (${encoding})`)]);
      const bobGets = voice.peer.nextMessage();
      viam.peer.data.send(toBob);
      expect(await bobGets).toEqual(toBob);
      const aliceGets = viam.peer.nextMessage();
      voice.peer.data.send(toAlice);
      expect(await aliceGets).toEqual(toAlice);

      // Streams end with OK: Call once bob half-closed, Connect once alice sent done too.
      await expect(viam.ended).resolves.toBeUndefined();
      await expect(viam.doneAcknowledged).resolves.toBeUndefined();
      await expect(voice.halfClosed).resolves.toBeUndefined();
      await expect(voice.ended).resolves.toBeUndefined();
      expect(await voiceEndedAt).toBeGreaterThanOrEqual(await doneSentAt);
    });
  }

  it("hands the Voice client the caller's candidates as RTCIceCandidateInit JSON, in order", async () => {
    const { viam, voice } = await crossDoorCall("plain");
    await expect(viam.ended).resolves.toBeUndefined();
    await expect(viam.doneAcknowledged).resolves.toBeUndefined();
    await expect(voice.ended).resolves.toBeUndefined();

    expect(viam.candidatesSent.length).toBeGreaterThan(0);
    const received = voice.candidatesReceived.map((text) => JSON.parse(text) as RTCIceCandidateInit);
    expect(received).toEqual(viam.candidatesSent);
    for (const init of received) {
      expect(init.candidate).toMatch(/^candidate:/);
      expect(typeof init.sdpMid === "string" || typeof init.sdpMLineIndex === "number").toBe(true);
    }
    // The other direction too: bob's candidates were sent as JSON and the call connected on them.
    expect(voice.candidatesSent.length).toBeGreaterThan(0);
    await Promise.all([viam.peer.connected, voice.peer.connected]);
  });
});

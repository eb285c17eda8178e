// The two ends of a call that crosses doors, for end-to-end tests: a caller speaking Viam's
// SignalingService (Call + one CallUpdate per candidate + done, over gRPC-web) and an answerer
// speaking protocol.voice.v1.VoiceService.Connect (one bidi stream over the Connect protocol).
// Both run over HTTP/1.1, and both are real @roamhq/wrtc peers: one audio transceiver
// (sendrecv) and the negotiated `data` channel (id 0), so ICE and DTLS actually connect.

import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createWritableIterable } from "@connectrpc/connect/protocol";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { SignalingService } from "../../proto/gen/proto/rpc/webrtc/v1/signaling_pb";
import { VoiceService, type ClientSignalSchema } from "../../proto/gen/protocol/voice/v1/voice_pb";
import { decodeSdp, encodeSdp, wrtc } from "./viam-host-answerer";

/**
 * @roamhq/wrtc quirk: the end-of-candidates (null) event can arrive before the last real
 * candidates, so gathering counts as over this long after it (same value as the Viam host).
 */
const GATHERING_SETTLE_MS = 100;

/** An Answer/Connect stream is registered a few milliseconds after it opens, and nothing tells
 * the client when (headers only come with the first message): a Call until then is not_found. */
const CALL_RETRY_MS = 200;
const CALL_RETRY_WITHIN_MS = 5_000;

/** How the caller writes its offer: plain SDP, or Viam's base64 of JSON {type, sdp}. */
export type SdpEncoding = "plain" | "viam";

export interface CallPeer {
  pc: RTCPeerConnection;
  /** The negotiated `data` channel (id 0), binaryType arraybuffer. */
  data: RTCDataChannel;
  dataOpen: Promise<void>;
  /** Resolves when connectionState is `connected`; rejects if it fails first. */
  connected: Promise<void>;
  /** The next message on `data`, as bytes. */
  nextMessage(timeoutMs?: number): Promise<Uint8Array>;
}

function createCallPeer(): CallPeer {
  const pc: RTCPeerConnection = new wrtc.RTCPeerConnection({ iceServers: [] });
  const data = pc.createDataChannel("data", { negotiated: true, id: 0, ordered: true });
  data.binaryType = "arraybuffer";
  const dataOpen = new Promise<void>((resolve) => data.addEventListener("open", () => resolve()));
  const connected = new Promise<void>((resolve, reject) => {
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "connected") resolve();
      if (pc.connectionState === "failed") reject(new Error("peer connection failed"));
    });
  });
  connected.catch(() => undefined);
  const inbox: Uint8Array[] = [];
  const waiting: Array<(m: Uint8Array) => void> = [];
  data.addEventListener("message", (ev: MessageEvent) => {
    const bytes = typeof ev.data === "string" ? new TextEncoder().encode(ev.data) : new Uint8Array(ev.data as ArrayBuffer);
    const wake = waiting.shift();
    if (wake) wake(bytes);
    else inbox.push(bytes);
  });
  return {
    pc, data, dataOpen, connected,
    nextMessage(timeoutMs = 10_000) {
      const queued = inbox.shift();
      if (queued) return Promise.resolve(queued);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`nothing on data within ${timeoutMs} ms`)), timeoutMs);
        waiting.push((m) => { clearTimeout(timer); resolve(m); });
      });
    },
  };
}

const candidateInit = (c: RTCIceCandidate): RTCIceCandidateInit => ({
  candidate: c.candidate,
  ...(c.sdpMid != null ? { sdpMid: c.sdpMid } : {}),
  ...(c.sdpMLineIndex != null ? { sdpMLineIndex: c.sdpMLineIndex } : {}),
  ...(c.usernameFragment != null ? { usernameFragment: c.usernameFragment } : {}),
});

interface Trickle {
  /** Candidates handed to `send`, in the order sent. */
  readonly sent: RTCIceCandidateInit[];
  /**
   * Sends the candidates gathered so far, then each new one, one at a time and in order; once
   * gathering is over (or `data` opened, whichever is first, as goutils does) calls `finish`
   * after the last send. Later candidates are dropped: the peer has been told there are no more.
   */
  start(send: (c: RTCIceCandidateInit) => Promise<unknown>, finish: () => Promise<unknown>): Promise<void>;
}

/** Collects a peer's local candidates from now on; they wait until `start` says where to send. */
function trickle(peer: CallPeer): Trickle {
  const held: RTCIceCandidateInit[] = [];
  const sent: RTCIceCandidateInit[] = [];
  let send: ((c: RTCIceCandidateInit) => Promise<unknown>) | null = null;
  let finished = false;
  let chain: Promise<unknown> = Promise.resolve();
  const enqueue = (c: RTCIceCandidateInit) => {
    chain = chain.then(async () => {
      if (finished) return;
      sent.push(c);
      await send!(c);
    });
  };
  const gathered = new Promise<void>((resolve) => {
    peer.pc.addEventListener("icecandidate", (ev: RTCPeerConnectionIceEvent) => {
      if (!ev.candidate) return void setTimeout(resolve, GATHERING_SETTLE_MS);
      if (!ev.candidate.candidate) return; // an empty candidate is another end-of-candidates marker
      if (send) enqueue(candidateInit(ev.candidate));
      else held.push(candidateInit(ev.candidate));
    });
  });
  return {
    sent,
    async start(sendOne, finish) {
      send = sendOne;
      held.splice(0).forEach(enqueue);
      await Promise.race([peer.dataOpen, gathered]);
      chain = chain.then(() => { finished = true; return finish(); });
      await chain;
    },
  };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

export interface ViamCaller {
  peer: CallPeer;
  /** CallRequest.sdp as sent. */
  offer: string;
  /** The answer's init-stage sdp as received, in the caller's encoding. */
  answer: Promise<string>;
  /** Candidates sent with CallUpdate, in order. */
  candidatesSent: RTCIceCandidateInit[];
  /** Resolves when the Call stream has ended with OK; rejects with its error otherwise. */
  ended: Promise<void>;
  /** Resolves just before CallUpdate done is sent, then `doneAcknowledged` once the server took it. */
  doneSending: Promise<void>;
  doneAcknowledged: Promise<void>;
}

/**
 * Calls `host` as a Viam SDK does: SignalingService.Call with the offer; once the answer (and
 * with it the call's uuid) arrives, one CallUpdate per local candidate, then CallUpdate done.
 */
export async function callFromViam(opts: {
  baseUrl: string; token: string; host: string; encoding: SdpEncoding; signal: AbortSignal;
}): Promise<ViamCaller> {
  const client = createClient(SignalingService, createGrpcWebTransport({ baseUrl: opts.baseUrl, httpVersion: "1.1" }));
  const headers = { ...bearer(opts.token), "rpc-host": opts.host };
  const peer = createCallPeer();
  peer.pc.addTransceiver("audio", { direction: "sendrecv" });
  const local = trickle(peer);
  await peer.pc.setLocalDescription(await peer.pc.createOffer());
  const description = peer.pc.localDescription!;
  const offer = opts.encoding === "viam" ? encodeSdp(description) : description.sdp;

  let answered!: (sdp: string) => void;
  const answer = new Promise<string>((resolve) => { answered = resolve; });
  let doneSendingNow!: () => void;
  const doneSending = new Promise<void>((resolve) => { doneSendingNow = resolve; });
  let trickled: Promise<void> | undefined;

  const exchange = async (): Promise<boolean> => {
    let uuid = "";
    for await (const res of client.call({ sdp: offer }, { headers, signal: opts.signal })) {
      switch (res.stage.case) {
        case "init": {
          uuid = res.uuid;
          const sdp = res.stage.value.sdp;
          answered(sdp);
          await peer.pc.setRemoteDescription(opts.encoding === "viam" ? decodeSdp(sdp) : { type: "answer", sdp });
          trickled = local.start(
            (c) => client.callUpdate({ uuid, update: { case: "candidate", value: {
              candidate: c.candidate!,
              ...(c.sdpMid != null ? { sdpMid: c.sdpMid } : {}),
              ...(c.sdpMLineIndex != null ? { sdpmLineIndex: c.sdpMLineIndex } : {}),
              ...(c.usernameFragment != null ? { usernameFragment: c.usernameFragment } : {}),
            } } }, { headers, signal: opts.signal }),
            () => {
              doneSendingNow();
              return client.callUpdate({ uuid, update: { case: "done", value: true } }, { headers, signal: opts.signal });
            },
          );
          trickled.catch(() => undefined);
          break;
        }
        case "update": {
          const c = res.stage.value.candidate!;
          await peer.pc.addIceCandidate({
            candidate: c.candidate, sdpMid: c.sdpMid ?? null, sdpMLineIndex: c.sdpmLineIndex ?? null,
            ...(c.usernameFragment !== undefined ? { usernameFragment: c.usernameFragment } : {}),
          });
          break;
        }
        default:
          throw new Error(`unexpected Call stage ${res.stage.case}`);
      }
    }
    return uuid !== "";
  };

  const ended = (async () => {
    const giveUp = Date.now() + CALL_RETRY_WITHIN_MS;
    for (;;) {
      try {
        if (!(await exchange())) throw new Error("the Call stream ended without an answer");
        return;
      } catch (err) {
        const notYetOnline = err instanceof ConnectError && err.code === Code.NotFound && trickled === undefined;
        if (!notYetOnline || Date.now() > giveUp) throw err;
        await new Promise((r) => setTimeout(r, CALL_RETRY_MS));
      }
    }
  })();
  ended.catch(() => undefined);
  const doneAcknowledged = ended.then(async () => {
    if (!trickled) throw new Error("the Call stream ended before the answer");
    await trickled;
  });
  doneAcknowledged.catch(() => undefined);

  return { peer, offer, answer, candidatesSent: local.sent, ended, doneSending, doneAcknowledged };
}

export interface VoiceAnswerer {
  peer: CallPeer;
  /** Signal.offer as received. */
  offer: Promise<string>;
  /** ClientSignal.answer as sent (plain SDP). */
  answer: Promise<string>;
  /** Signal.candidate strings as received, in order. */
  candidatesReceived: string[];
  /** Candidates sent as ClientSignal.candidate (the JSON of each), in order. */
  candidatesSent: RTCIceCandidateInit[];
  /** Resolves once the client half-closed its request stream. */
  halfClosed: Promise<void>;
  /** Resolves when the Connect stream has ended with OK; rejects with its error otherwise. */
  ended: Promise<void>;
}

/**
 * Goes online as a Voice client: opens VoiceService.Connect, answers the offer it is given with
 * plain SDP, sends each local candidate as the JSON of an RTCIceCandidateInit, and half-closes
 * its side when it has no more candidates (Voice has no explicit done).
 */
export function answerAsVoice(opts: { baseUrl: string; token: string; signal: AbortSignal }): VoiceAnswerer {
  const client = createClient(VoiceService, createConnectTransport({ baseUrl: opts.baseUrl, httpVersion: "1.1" }));
  const peer = createCallPeer();
  const local = trickle(peer);
  const outbound = createWritableIterable<MessageInitShape<typeof ClientSignalSchema>>();
  const candidatesReceived: string[] = [];

  let offered!: (sdp: string) => void;
  const offer = new Promise<string>((resolve) => { offered = resolve; });
  let answered!: (sdp: string) => void;
  const answer = new Promise<string>((resolve) => { answered = resolve; });
  let trickled: Promise<void> | undefined;
  let trickling!: (t: Promise<void>) => void;
  const halfClosed = new Promise<Promise<void>>((resolve) => { trickling = resolve; }).then((t) => t);
  halfClosed.catch(() => undefined);

  const ended = (async () => {
    try {
      for await (const signal of client.connect(outbound, { headers: bearer(opts.token), signal: opts.signal })) {
        switch (signal.event.case) {
          case "offer": {
            offered(signal.event.value.offer);
            await peer.pc.setRemoteDescription({ type: "offer", sdp: signal.event.value.offer });
            // The transceiver setRemoteDescription created receives only until told to send too.
            for (const t of peer.pc.getTransceivers()) if (t.receiver.track.kind === "audio") t.direction = "sendrecv";
            await peer.pc.setLocalDescription(await peer.pc.createAnswer());
            const sdp = peer.pc.localDescription!.sdp;
            await outbound.write({ event: { case: "answer", value: { answer: sdp } } });
            answered(sdp);
            trickled = local.start(
              (c) => outbound.write({ event: { case: "candidate", value: { candidate: JSON.stringify(c) } } }),
              async () => outbound.close(),
            );
            trickling(trickled);
            break;
          }
          case "candidate":
            candidatesReceived.push(signal.event.value.candidate);
            await peer.pc.addIceCandidate(JSON.parse(signal.event.value.candidate) as RTCIceCandidateInit);
            break;
          default:
            throw new Error(`unexpected Voice signal ${signal.event.case}`);
        }
      }
    } finally {
      // Already closed after a normal end; after a failure this stops the trickle writing on.
      outbound.close();
    }
  })();
  ended.catch(() => undefined);

  return { peer, offer, answer, candidatesReceived, candidatesSent: local.sent, halfClosed, ended };
}

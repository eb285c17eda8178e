// A WebRTC voice call between two pages, signaled through the project's own Connect services:
// the caller through Viam's SignalingService.Call / CallUpdate (connect-web, server streaming
// over fetch), the callee through VoiceService.Connect over the WebSocket transport. The call
// model joins the two doors; audio then flows peer to peer.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { asyncQueue, type AsyncQueue } from "../client/async-queue";
import { createWebSocketTransport } from "../client/websocket-transport";
import { SignalingService, type ICECandidate, type ICECandidateSchema } from "../proto/gen/proto/rpc/webrtc/v1/signaling_pb";
import { VoiceService, type ClientSignalSchema, type Signal } from "../proto/gen/protocol/voice/v1/voice_pb";

type ClientSignalInit = MessageInitShape<typeof ClientSignalSchema>;

/** How long a Call to a callee that is not online is retried before the page says so, and how
 * often: long enough to cover a Voice callee reopening its stream, short enough to feel immediate. */
const NOT_ONLINE_GRACE_MS = 1_500;
const NOT_ONLINE_RETRY_MS = 250;

const http = createConnectTransport({ baseUrl: location.origin, useBinaryFormat: true });
const signaling = createClient(SignalingService, http);

function headersFor(token: string, host: string): Record<string, string> {
  return { authorization: `Bearer ${token}`, "rpc-host": host };
}

/** The STUN/TURN servers the Worker hands out (OptionalWebRTCConfig), as RTCIceServer entries. */
export async function iceServersFor(token: string, host: string): Promise<RTCIceServer[]> {
  const { config } = await signaling.optionalWebRTCConfig({}, { headers: headersFor(token, host) });
  return (config?.additionalIceServers ?? []).map((s) => ({
    urls: s.urls,
    ...(s.username ? { username: s.username } : {}),
    ...(s.credential ? { credential: s.credential } : {}),
  }));
}

export interface CallEvents {
  /** The call model's id of this call: known to the caller with the answer, to the callee with the offer. */
  onCallId(id: string): void;
  onRemoteStream(stream: MediaStream): void;
  onConnectionState(state: RTCPeerConnectionState): void;
}

export class WebRtcCall {
  callId: string | null = null;
  /** The signaling exchange: resolves once both sides have sent all they had, rejects with the
   * ConnectError that ended it. Media may flow (and the call go on) long after it settles. */
  signaling: Promise<void> = Promise.resolve();
  readonly pc: RTCPeerConnection;

  private constructor(iceServers: RTCIceServer[], mic: MediaStream, private readonly events: CallEvents,
    private readonly stop: AbortController) {
    this.pc = new RTCPeerConnection({ iceServers });
    for (const track of mic.getAudioTracks()) this.pc.addTrack(track, mic);
    this.pc.ontrack = (e) => events.onRemoteStream(e.streams[0] ?? new MediaStream([e.track]));
    this.pc.onconnectionstatechange = () => events.onConnectionState(this.pc.connectionState);
  }

  /** Calls `callee` (an identity with a Voice stream, or any answering door, open). */
  static place(opts: { token: string; callee: string; mic: MediaStream; iceServers: RTCIceServer[]; events: CallEvents }): WebRtcCall {
    const call = new WebRtcCall(opts.iceServers, opts.mic, opts.events, new AbortController());
    call.signaling = call.offer(opts.token, opts.callee);
    return call;
  }

  /**
   * Opens a Voice stream (the page is online to take calls) and answers the first call offered on
   * it. Resolves once the offer is in; rejects when the stream fails or `signal` aborts first.
   */
  static async answerNext(opts: { token: string; mic: MediaStream; iceServers: RTCIceServer[]; signal: AbortSignal;
    events: CallEvents }): Promise<WebRtcCall> {
    const voice = createClient(VoiceService, createWebSocketTransport({ baseUrl: location.origin, token: opts.token, fallback: http }));
    const outbox = asyncQueue<ClientSignalInit>();
    // Until the offer arrives, going offline ends the stream; after it, only the call does.
    const stream = new AbortController();
    const goOffline = () => stream.abort();
    opts.signal.addEventListener("abort", goOffline, { once: true });
    let callId: string | null = null;
    const signals = voice.connect(outbox, {
      signal: stream.signal,
      onHeader: (header) => { callId = header.get("voice-call-id"); },
    })[Symbol.asyncIterator]();
    let first: IteratorResult<Signal>;
    try {
      first = await signals.next();
    } finally {
      opts.signal.removeEventListener("abort", goOffline);
    }
    if (first.done || first.value.event.case !== "offer") {
      stream.abort();
      throw new ConnectError("the Voice stream ended without offering a call", Code.Unavailable);
    }
    const call = new WebRtcCall(opts.iceServers, opts.mic, opts.events, stream);
    if (callId) {
      call.callId = callId;
      opts.events.onCallId(callId);
    }
    call.signaling = call.answer(first.value.event.value.offer, signals, outbox);
    return call;
  }

  /** Round-trip time of the selected ICE candidate pair, in ms (null until one is selected). */
  async roundTripMs(): Promise<number | null> {
    const stats = await this.pc.getStats();
    let pair: { currentRoundTripTime?: number } | undefined;
    stats.forEach((s: { type: string; selectedCandidatePairId?: string }) => {
      if (s.type === "transport" && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
    });
    // Chromium names the pair on the transport; others only mark it nominated.
    pair ??= [...stats.values()].find((s: { type: string; nominated?: boolean; state?: string }) =>
      s.type === "candidate-pair" && s.nominated && s.state === "succeeded");
    return typeof pair?.currentRoundTripTime === "number" ? pair.currentRoundTripTime * 1000 : null;
  }

  /** Ends this page's side: closes the peer connection and any signaling stream still open. */
  close(): void {
    this.stop.abort();
    this.pc.close();
  }

  private async offer(token: string, callee: string): Promise<void> {
    const headers = headersFor(token, callee);
    // CallUpdate needs the call's uuid, which comes with the answer: candidates wait until then.
    const waiting: Array<RTCIceCandidate | null> = [];
    let updates = Promise.resolve();
    const update = (c: RTCIceCandidate | null) => {
      const uuid = this.callId!;
      const request = c
        ? { uuid, update: { case: "candidate" as const, value: candidateToWire(c) } }
        : { uuid, update: { case: "done" as const, value: true } };
      // In order: the server must see every candidate before done.
      updates = updates.then(() => signaling.callUpdate(request, { headers }))
        .then(() => undefined, (err: unknown) => {
          if (!this.stop.signal.aborted) console.warn("CallUpdate failed", ConnectError.from(err).message);
        });
    };
    this.pc.onicecandidate = ({ candidate }) => {
      // An empty candidate marks the end of one generation; only null ends gathering.
      if (candidate && !candidate.candidate) return;
      if (this.callId) update(candidate); else waiting.push(candidate);
    };
    await this.pc.setLocalDescription(await this.pc.createOffer());
    let answered = false;
    for await (const res of this.callWhenOnline(headers)) {
      if (!this.callId) {
        this.callId = res.uuid;
        this.events.onCallId(res.uuid);
        for (const c of waiting.splice(0)) update(c);
      }
      if (res.stage.case === "init") {
        await this.pc.setRemoteDescription({ type: "answer", sdp: res.stage.value.sdp });
        answered = true;
      } else if (res.stage.case === "update" && res.stage.value.candidate) {
        await this.pc.addIceCandidate(candidateFromWire(res.stage.value.candidate));
      }
    }
    if (!answered) throw new ConnectError(`${callee} ended the call before answering`, Code.Aborted);
    await updates;
  }

  /**
   * The Call stream, retried while the server says the callee is not online, for a moment: a
   * Voice callee reopens its stream after every call (one stream carries one call), so a callee
   * that just finished a call, or just went online, is briefly not listening.
   */
  private async *callWhenOnline(headers: Record<string, string>) {
    const giveUpAt = Date.now() + NOT_ONLINE_GRACE_MS;
    while (true) {
      let responded = false;
      try {
        for await (const res of signaling.call({ sdp: this.pc.localDescription!.sdp }, { headers, signal: this.stop.signal })) {
          responded = true;
          yield res;
        }
        return;
      } catch (err) {
        if (responded || ConnectError.from(err).code !== Code.NotFound || Date.now() >= giveUpAt) throw err;
      }
      await new Promise((r) => setTimeout(r, NOT_ONLINE_RETRY_MS));
    }
  }

  private async answer(offer: string, signals: AsyncIterator<Signal>, outbox: AsyncQueue<ClientSignalInit>): Promise<void> {
    // The call model takes the callee's candidates only after its answer: hold them until it is sent.
    const waiting: Array<RTCIceCandidate | null> = [];
    let answered = false;
    const send = (c: RTCIceCandidate | null) => {
      // Voice has no "done" message: closing our side of the stream says "no more candidates".
      if (!c) outbox.close();
      else outbox.push({ event: { case: "candidate", value: { candidate: JSON.stringify(c.toJSON()) } } });
    };
    this.pc.onicecandidate = ({ candidate }) => {
      if (candidate && !candidate.candidate) return;
      if (answered) send(candidate); else waiting.push(candidate);
    };
    await this.pc.setRemoteDescription({ type: "offer", sdp: offer });
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    outbox.push({ event: { case: "answer", value: { answer: this.pc.localDescription!.sdp } } });
    answered = true;
    for (const c of waiting.splice(0)) send(c);
    for (let r = await signals.next(); !r.done; r = await signals.next()) {
      if (r.value.event.case === "candidate") await this.pc.addIceCandidate(JSON.parse(r.value.event.value.candidate) as RTCIceCandidateInit);
    }
  }
}

function candidateToWire(c: RTCIceCandidate): MessageInitShape<typeof ICECandidateSchema> {
  return {
    candidate: c.candidate,
    ...(c.sdpMid !== null ? { sdpMid: c.sdpMid } : {}),
    ...(c.sdpMLineIndex !== null ? { sdpmLineIndex: c.sdpMLineIndex } : {}),
    ...(c.usernameFragment !== null ? { usernameFragment: c.usernameFragment } : {}),
  };
}

function candidateFromWire(c: ICECandidate): RTCIceCandidateInit {
  return { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpmLineIndex, usernameFragment: c.usernameFragment };
}


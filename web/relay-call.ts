// A voice call through the seed-003 audio relay (`GET /audio/:room`), for networks where WebRTC
// cannot connect: the microphone's PCM goes to the Worker over a WebSocket and on to the peer.
// One socket is one identity's line in a room; it carries one call at a time.
//
// The page proposes the AudioContext's rate, mono, int16, 20 ms chunks (the chunk size counts
// frames). It accepts a peer's proposal it can play as is (its rate, mono, int16 or float32) and
// counter-proposes its own otherwise. The relay keeps no record of a call (pairing lives in
// socket attachments), so the history a page shows in this mode is what its own socket saw.
import {
  AudioMessageType, SampleFormat, decode, encode, type AudioPacket, type AudioParams,
} from "../codecs/audio-codec";
import type { Side } from "./call-api";
import type { CaptureOptions, PcmEncoding, PlayerOptions } from "./relay-worklet";

/** Audio in one data packet: the packetization of RTP telephony (Opus, G.711), 50 packets/s. */
const CHUNK_SECONDS = 0.02;
/** Audio the socket may hold unsent before chunks are dropped: a stalled uplink must cost a gap,
 * not a delay that grows for the rest of the call (~170 ms of 48 kHz int16). */
const MAX_SEND_BACKLOG_BYTES = 16 * 1024;
/** Keep-alive and round-trip probe; the relay's runtime answers "ping" with "pong" itself. */
const PING_INTERVAL_MS = 2_000;
const EMPTY = new Uint8Array(0);

export type LineState = "idle" | "calling" | "countering" | "paired";

export interface RelayEvents {
  /** Someone calls this page (before any status of that call). */
  onIncoming(caller: string): void;
  /** A step of the call, for the page's history; `side` is the party that took it. */
  onStatus(status: string, side: Side | undefined, detail: string): void;
  onState(state: LineState, peer: string | null): void;
  onRemoteStream(stream: MediaStream): void;
  /** The call is over; `reason` in words; `failed` unless someone hung up. */
  onCallEnded(reason: string, failed: boolean): void;
  /** The socket is gone: the page is no longer online in the room; `reason` in words. */
  onClosed(reason: string): void;
}

export class RelayLine {
  state: LineState = "idle";
  peer: string | null = null;
  /** This page's side in the current call. */
  side: Side | null = null;
  /** Last keep-alive round trip to the relay, in ms. */
  rttMs: number | null = null;
  private params: AudioParams | null = null;
  private media: { source: MediaStreamAudioSourceNode; capture: AudioWorkletNode; player: AudioWorkletNode } | null = null;
  private pingSentAt: number | null = null;
  private readonly pinger: ReturnType<typeof setInterval>;
  private closedByUs = false;

  private constructor(private readonly ws: WebSocket, private readonly audio: AudioContext,
    private readonly mic: MediaStream, private readonly events: RelayEvents) {
    ws.addEventListener("message", (e: MessageEvent<ArrayBuffer | string>) => this.onMessage(e.data));
    ws.addEventListener("close", (e) => this.onSocketClosed(e.code, e.reason));
    this.pinger = setInterval(() => this.ping(), PING_INTERVAL_MS);
  }

  /** Joins `room` as the token's identity. The audio context must have loaded relay-worklet.js. */
  static async open(room: string, token: string, audio: AudioContext, mic: MediaStream, events: RelayEvents): Promise<RelayLine> {
    const url = new URL(`/audio/${encodeURIComponent(room)}`, location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("access_token", token);
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener("open", () => resolve(), { once: true });
      // The browser hides why an upgrade failed (401, 400): say what it usually is.
      ws.addEventListener("close", () => reject(new Error(
        `The audio relay refused to let you into room "${room}" (an invalid token or room name?).`)), { once: true });
    });
    return new RelayLine(ws, audio, mic, events);
  }

  private get proposal(): AudioParams {
    return { sampleRate: this.audio.sampleRate, channels: 1, format: SampleFormat.Int16,
      chunkSize: Math.round(this.audio.sampleRate * CHUNK_SECONDS) };
  }

  dial(callee: string): void {
    if (this.state !== "idle") return;
    this.peer = callee;
    this.side = "caller";
    this.params = this.proposal;
    this.send({ type: AudioMessageType.Handshake, params: this.params, username: callee, optional: EMPTY });
    this.setState("calling");
    this.events.onStatus("offered", "caller", `calls ${callee}; proposes ${describe(this.params)}`);
  }

  hangUp(): void {
    if (this.state === "idle") return;
    this.send({ type: AudioMessageType.Drop, optional: EMPTY });
    this.events.onStatus("hung_up", this.side ?? undefined, "");
    this.endCall("You hung up.", false);
  }

  close(): void {
    this.closedByUs = true;
    if (this.state !== "idle") this.hangUp();
    clearInterval(this.pinger);
    this.ws.close(1000, "going offline");
  }

  private onMessage(data: ArrayBuffer | string): void {
    if (typeof data === "string") {
      if (data === "pong" && this.pingSentAt !== null) {
        this.rttMs = performance.now() - this.pingSentAt;
        this.pingSentAt = null;
      }
      return;
    }
    const packet = decode(data);
    const other: Side = this.side === "caller" ? "callee" : "caller";
    switch (packet.type) {
      case AudioMessageType.Handshake:
        return this.ring(packet.username, packet.params);
      case AudioMessageType.UserNotFound:
        this.events.onStatus("user_not_found", undefined, `${this.peer} is not in the room`);
        return this.endCall(`${this.peer} is not online in this relay room.`, true);
      case AudioMessageType.CounterProposal:
        if (this.state !== "calling") return;
        this.events.onStatus("counter_proposed", "callee", describe(packet.params));
        if (!this.playable(packet.params)) {
          this.send({ type: AudioMessageType.Reject, optional: EMPTY });
          this.events.onStatus("rejected", "caller", "cannot play the counter-proposal");
          return this.endCall(`${this.peer} proposed audio this page cannot play (${describe(packet.params)}).`, true);
        }
        this.params = packet.params;
        this.send({ type: AudioMessageType.Accept, optional: EMPTY });
        this.events.onStatus("accepted", "caller", describe(packet.params));
        return this.pair();
      case AudioMessageType.Accept:
        if (this.state !== "calling" && this.state !== "countering") return;
        this.events.onStatus("accepted", other, describe(this.params!));
        return this.pair();
      case AudioMessageType.Reject:
        if (this.state === "idle") return;
        this.events.onStatus("rejected", other, "");
        return this.endCall(this.state === "calling" && this.side === "caller"
          ? `${this.peer} is busy or declined.` : `${this.peer} declined the audio format.`, true);
      case AudioMessageType.Drop:
        // Also what the relay sends when the peer's socket goes away.
        if (this.state === "idle") return;
        this.events.onStatus("hung_up", other, "");
        return this.endCall(`${this.peer} hung up.`, false);
      case AudioMessageType.Data:
        if (this.state === "paired" && this.media) {
          // Copy out of the socket's buffer: the view is transferred to the audio thread.
          const chunk = packet.data.slice().buffer;
          this.media.player.port.postMessage(chunk, [chunk]);
        }
    }
  }

  /** Someone calls: accept what this page can play as is, otherwise counter-propose. */
  private ring(caller: string, params: AudioParams): void {
    this.peer = caller;
    this.side = "callee";
    this.events.onIncoming(caller);
    this.events.onStatus("offered", "caller", `${caller} calls; proposes ${describe(params)}`);
    if (this.playable(params)) {
      this.params = params;
      this.send({ type: AudioMessageType.Accept, optional: EMPTY });
      this.events.onStatus("accepted", "callee", describe(params));
      this.pair();
      return;
    }
    this.params = this.proposal;
    this.send({ type: AudioMessageType.CounterProposal, params: this.params, optional: EMPTY });
    this.events.onStatus("counter_proposed", "callee", describe(this.params));
    this.setState("countering");
  }

  private playable(p: AudioParams): boolean {
    const bytes = p.format === SampleFormat.Int16 ? 2 : p.format === SampleFormat.Float32 ? 4 : 0;
    return bytes > 0 && p.channels === 1 && p.sampleRate === this.audio.sampleRate
      && p.chunkSize > 0 && p.chunkSize * bytes <= 32 * 1024;
  }

  /** Both sides agreed: microphone chunks go out, the peer's chunks play. */
  private pair(): void {
    const params = this.params!;
    const encoding: PcmEncoding = params.format === SampleFormat.Float32 ? "float32" : "int16";
    const source = this.audio.createMediaStreamSource(this.mic);
    const capture = new AudioWorkletNode(this.audio, "pcm-capture", {
      numberOfInputs: 1, numberOfOutputs: 1,
      processorOptions: { chunkFrames: params.chunkSize, encoding } satisfies CaptureOptions,
    });
    capture.port.onmessage = (e: MessageEvent<ArrayBuffer>) => {
      if (this.state !== "paired" || this.ws.bufferedAmount > MAX_SEND_BACKLOG_BYTES) return;
      this.send({ type: AudioMessageType.Data, data: new Uint8Array(e.data) });
    };
    source.connect(capture);
    // A worklet runs only while it is pulled by the graph; its output is silence.
    capture.connect(this.audio.destination);
    const player = new AudioWorkletNode(this.audio, "pcm-player", {
      numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [1],
      processorOptions: { encoding } satisfies PlayerOptions,
    });
    // The peer's audio as a stream, so the page plays and meters it as it does a WebRTC track.
    const sink = this.audio.createMediaStreamDestination();
    player.connect(sink);
    this.media = { source, capture, player };
    this.setState("paired");
    this.events.onRemoteStream(sink.stream);
  }

  private endCall(reason: string, failed: boolean): void {
    if (this.media) {
      this.media.source.disconnect();
      this.media.capture.disconnect();
      this.media.capture.port.onmessage = null;
      this.media.player.disconnect();
      this.media = null;
    }
    this.params = null;
    this.setState("idle");
    this.peer = null;
    this.side = null;
    this.events.onCallEnded(reason, failed);
  }

  private setState(state: LineState): void {
    this.state = state;
    this.events.onState(state, this.peer);
  }

  private send(packet: AudioPacket): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(encode(packet));
  }

  private ping(): void {
    if (this.ws.readyState !== WebSocket.OPEN || this.pingSentAt !== null) return;
    this.pingSentAt = performance.now();
    this.ws.send("ping");
  }

  private onSocketClosed(code: number, reason: string): void {
    clearInterval(this.pinger);
    if (this.state !== "idle") {
      this.events.onStatus("failed", undefined, "the relay connection closed");
      this.endCall("The relay connection closed during the call.", true);
    }
    if (this.closedByUs) return;
    this.events.onClosed(code === 1008
      ? "You went online in this relay room from another tab or device, so this page was signed out of it."
      : `The relay connection closed (${code}${reason ? `: ${reason}` : ""}).`);
  }
}

function describe(p: AudioParams): string {
  const format = p.format === SampleFormat.Int16 ? "int16" : p.format === SampleFormat.Float32 ? "float32" : `format ${p.format}`;
  return `${p.sampleRate} Hz, ${p.channels} ch, ${format}, ${p.chunkSize}-frame chunks`;
}

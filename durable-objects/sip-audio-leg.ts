// A SIP account's seat in its call's audio room (seed 003), through the room's public door: a
// WebSocket upgrade on the AudioRoom object with the identity header the Worker's /audio/:room
// route sets (durable-objects/audio-room.ts). The SIP account is a softphone without a person
// behind it, so its leg is a socket held by the account object itself:
// - the caller's leg dials the callee (handshake naming it) until the callee's socket is in the
//   room and answers: an accept (4) or a counter-proposal (2) means the callee took the call's
//   audio, a reject (3) that it declined;
// - the callee's leg (a SIP account that answered itself) accepts the handshake of the call's
//   other party, and rejects anyone else's;
// - once paired, queued WAV audio leaves as data packets (6) at real-time pace; muted, packets
//   are dropped while the clock runs on; a drop (5) or a closed socket ends the leg's pairing.
// The socket is not hibernatable (an object cannot hibernate while it holds a client socket), so
// a leg lives as long as the account object stays in memory; an evicted account reopens it on
// the next PlayWavFiles.
import { AudioMessageType, decode, encode, SampleFormat, type AudioPacket, type AudioParams } from "../codecs/audio-codec";
import { MAX_AUDIO_FRAME_BYTES, SIP_AUDIO_DIAL_RETRY_MS, SIP_AUDIO_PACKET_MS } from "../model/limits";
import { bytesPerSample } from "../codecs/wav-audio";
import { AUDIO_IDENTITY_HEADER } from "./audio-room";
import { NORMAL_CLOSURE } from "../model/close-codes";

/** What a SIP leg proposes: 16 kHz mono 16-bit, wideband telephony and the usual output of
 * speech synthesis, in 20 ms packets. `chunkSize` is in sample frames per data packet. A callee
 * may counter-propose anything the relay carries; WAVs are converted to it (codecs/wav-audio.ts). */
export const SIP_AUDIO_PROPOSAL: AudioParams = {
  sampleRate: 16_000, channels: 1, format: SampleFormat.Int16, chunkSize: 16_000 * SIP_AUDIO_PACKET_MS / 1000,
};

export interface AudioLegEvents {
  /** The far party took the call's audio (its accept or counter-proposal to our handshake). */
  accepted(leg: SipAudioLeg): void;
  /** The far party rejected our handshake. */
  declined(leg: SipAudioLeg): void;
  /** The far party dropped the audio, or the leg's socket went away. */
  dropped(leg: SipAudioLeg): void;
}

interface Packet {
  body: Uint8Array;
  ms: number;
}

const EMPTY = new Uint8Array(0);

export class SipAudioLeg {
  /** Negotiated audio format; set while paired. */
  params: AudioParams | undefined;
  /** Bytes of audio data received from the far party (nobody listens: the account is a bot). */
  receivedBytes = 0;
  private pairing: "idle" | "calling" | "paired" = "idle";
  private closed = false;
  private muted = false;
  private queue: Packet[] = [];
  private queuedBytes = 0;
  private nextDue = 0;
  private pump: number | undefined;
  private redial: number | undefined;
  private pairedWaiters: ((params: AudioParams | undefined) => void)[] = [];
  private drainWaiters: (() => void)[] = [];

  private constructor(readonly callId: string, readonly identity: string, readonly peer: string,
    private readonly ws: WebSocket, private readonly dialUntil: number, private readonly events: AudioLegEvents) {}

  static async open(env: Env, opts: { callId: string; identity: string; peer: string; dials: boolean; dialUntil: number },
    events: AudioLegEvents): Promise<SipAudioLeg> {
    const room = env.AUDIO_ROOMS.getByName(opts.callId);
    const res = await room.fetch(new Request(`https://audio-room.internal/audio/${opts.callId}`, {
      headers: { upgrade: "websocket", [AUDIO_IDENTITY_HEADER]: opts.identity },
    }));
    if (!res.webSocket) throw new Error(`audio room ${opts.callId} refused the leg of ${opts.identity}: ${res.status}`);
    res.webSocket.accept();
    // A client socket hands binary messages over as Blobs unless told otherwise.
    res.webSocket.binaryType = "arraybuffer";
    const leg = new SipAudioLeg(opts.callId, opts.identity, opts.peer, res.webSocket, opts.dials ? opts.dialUntil : 0, events);
    res.webSocket.addEventListener("message", (e) => leg.onMessage(e.data as ArrayBuffer | string));
    res.webSocket.addEventListener("close", () => leg.onGone());
    res.webSocket.addEventListener("error", () => leg.onGone());
    leg.dial();
    return leg;
  }

  get isPaired(): boolean {
    return this.pairing === "paired";
  }

  get pendingBytes(): number {
    return this.queuedBytes;
  }

  /** The negotiated format once the far party took the audio, or undefined after `ms`. */
  waitPaired(ms: number): Promise<AudioParams | undefined> {
    if (this.pairing === "paired" || this.closed) return Promise.resolve(this.params);
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(undefined), ms);
      const done = (params: AudioParams | undefined) => {
        stopTimer(timer);
        this.pairedWaiters = this.pairedWaiters.filter((w) => w !== done);
        resolve(params);
      };
      this.pairedWaiters.push(done);
    });
  }

  /** Queues audio already in the negotiated format, cut into data packets. */
  enqueue(audio: Uint8Array): void {
    const params = this.params;
    if (!params) throw new Error("audio queued on a leg that is not paired");
    const frameBytes = params.channels * bytesPerSample(params.format);
    const framesPerPacket = packetFrames(params, frameBytes);
    for (let offset = 0; offset < audio.byteLength; offset += framesPerPacket * frameBytes) {
      const body = audio.subarray(offset, Math.min(audio.byteLength, offset + framesPerPacket * frameBytes));
      this.queue.push({ body, ms: (body.byteLength / frameBytes) * 1000 / params.sampleRate });
      this.queuedBytes += body.byteLength;
    }
    this.play();
  }

  setMuted(muted: boolean): void {
    this.muted = muted;
  }

  /** Resolves once every queued packet has been played (or dropped). */
  whenDrained(): Promise<void> {
    if (this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  stopPlayback(): void {
    this.queue = [];
    this.queuedBytes = 0;
    stopTimer(this.pump);
    this.pump = undefined;
    this.settleDrain();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopPlayback();
    stopTimer(this.redial);
    this.settlePaired();
    try {
      this.ws.close(NORMAL_CLOSURE, "call ended");
    } catch {
      // Already closed by the room: nothing left to tell it.
    }
  }

  private dial(): void {
    if (this.closed || this.pairing !== "idle" || Date.now() >= this.dialUntil) return;
    this.pairing = "calling";
    this.send({ type: AudioMessageType.Handshake, params: SIP_AUDIO_PROPOSAL, username: this.peer, optional: EMPTY });
  }

  private onMessage(message: ArrayBuffer | string): void {
    if (this.closed || typeof message === "string") return;
    let packet: AudioPacket;
    try {
      packet = decode(message);
    } catch (err) {
      console.warn("sip audio leg: undecodable frame from the room", { callId: this.callId, err: String(err) });
      return;
    }
    switch (packet.type) {
      case AudioMessageType.UserNotFound:
        // The callee's socket is not in the room yet: ask again shortly.
        if (this.pairing === "calling") {
          this.pairing = "idle";
          this.redial = setTimeout(() => this.dial(), SIP_AUDIO_DIAL_RETRY_MS);
        }
        return;
      case AudioMessageType.Reject:
        if (this.pairing === "calling") {
          this.pairing = "idle";
          this.events.declined(this);
        }
        return;
      case AudioMessageType.CounterProposal:
        if (this.pairing === "calling") {
          this.send({ type: AudioMessageType.Accept, optional: EMPTY });
          this.paired(packet.params);
        }
        return;
      case AudioMessageType.Accept:
        if (this.pairing === "calling") this.paired(SIP_AUDIO_PROPOSAL);
        return;
      case AudioMessageType.Handshake:
        // The far party dials us (we answered the call ourselves, or it dialed first): take it,
        // but only from the call's other party. The room is named by the call id, which is no
        // secret to whoever learns it: anyone else in it is turned away.
        if (this.pairing === "idle" && packet.username !== this.peer) {
          this.send({ type: AudioMessageType.Reject, optional: EMPTY });
          return;
        }
        if (this.pairing === "idle") {
          stopTimer(this.redial);
          this.send({ type: AudioMessageType.Accept, optional: EMPTY });
          this.paired(packet.params);
        }
        return;
      case AudioMessageType.Drop:
        if (this.pairing !== "idle") {
          this.pairing = "idle";
          this.params = undefined;
          this.stopPlayback();
          this.events.dropped(this);
        }
        return;
      case AudioMessageType.Data:
        this.receivedBytes += packet.data.byteLength;
        return;
    }
  }

  private onGone(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopPlayback();
    stopTimer(this.redial);
    this.settlePaired();
    this.events.dropped(this);
  }

  private paired(params: AudioParams): void {
    this.pairing = "paired";
    this.params = params;
    this.settlePaired();
    this.events.accepted(this);
    this.play();
  }

  /** Sends every packet that is due, then sleeps until the next one: real-time pace, measured
   * against the wall clock so timer jitter does not accumulate into drift. */
  private play(): void {
    if (this.pump !== undefined || this.pairing !== "paired" || this.queue.length === 0) return;
    const now = Date.now();
    // After a pause (nothing queued) or a stall, the clock restarts instead of bursting to catch up.
    if (this.nextDue < now - SIP_AUDIO_PACKET_MS) this.nextDue = now;
    while (this.queue.length > 0 && this.nextDue <= now) {
      const packet = this.queue.shift()!;
      this.queuedBytes -= packet.body.byteLength;
      if (!this.muted) this.send({ type: AudioMessageType.Data, data: packet.body });
      this.nextDue += packet.ms;
    }
    if (this.queue.length === 0) {
      this.settleDrain();
      return;
    }
    this.pump = setTimeout(() => { this.pump = undefined; this.play(); }, Math.max(0, this.nextDue - now));
  }

  private send(packet: AudioPacket): void {
    try {
      this.ws.send(encode(packet));
    } catch (err) {
      console.warn("sip audio leg: send failed", { callId: this.callId, err: String(err) });
    }
  }

  private settlePaired(): void {
    for (const wake of [...this.pairedWaiters]) wake(this.params);
  }

  private settleDrain(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const wake of waiters) wake();
  }
}

function stopTimer(timer: number | undefined): void {
  if (timer !== undefined) clearTimeout(timer);
}

/** Sample frames per data packet: the negotiated chunk size (its unit, for this service, is
 * frames), or 20 ms when it is 0, never more than one relay frame holds. */
function packetFrames(params: AudioParams, frameBytes: number): number {
  const wanted = params.chunkSize > 0 ? params.chunkSize : Math.round(params.sampleRate * SIP_AUDIO_PACKET_MS / 1000);
  const fits = Math.floor((MAX_AUDIO_FRAME_BYTES - 6) / frameBytes);
  return Math.max(1, Math.min(wanted, fits));
}

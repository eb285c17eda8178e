// Audio worklets of the relay mode (seed-003 PCM over the audio relay), on the audio rendering
// thread: `pcm-capture` cuts the microphone into chunks of the agreed size and format, and
// `pcm-player` plays the peer's chunks through a small jitter buffer. Kept free of imports: the
// worklet scope has no TextEncoder, which the codec module needs.

/** Sample encodings both worklets speak; the page maps them to the codec's format numbers. */
export type PcmEncoding = "int16" | "float32";

export interface CaptureOptions {
  /** Frames (samples of the one channel) per chunk: the handshake's chunk size. */
  chunkFrames: number;
  encoding: PcmEncoding;
}

export interface PlayerOptions {
  encoding: PcmEncoding;
}

/** Audio the player holds before it starts (and after running dry): enough to ride out the
 * jitter of WebSocket delivery at 50 packets/s without making the call feel late. */
const PREBUFFER_SECONDS = 0.06;
/** Past this much queued audio the player skips ahead to the prebuffer level: a burst after a
 * stall must not turn into permanent delay. */
const MAX_BACKLOG_SECONDS = 0.25;

function encodeChunk(samples: Float32Array, encoding: PcmEncoding): ArrayBuffer {
  if (encoding === "float32") return samples.slice().buffer;
  const out = new DataView(new ArrayBuffer(samples.length * 2));
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    out.setInt16(i * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
  }
  return out.buffer;
}

function decodeChunk(bytes: ArrayBuffer, encoding: PcmEncoding): Float32Array {
  const view = new DataView(bytes);
  if (encoding === "float32") {
    const out = new Float32Array(Math.floor(bytes.byteLength / 4));
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
    return out;
  }
  const out = new Float32Array(Math.floor(bytes.byteLength / 2));
  for (let i = 0; i < out.length; i++) out[i] = view.getInt16(i * 2, true) / 0x8000;
  return out;
}

class PcmCapture extends AudioWorkletProcessor {
  private readonly chunk: Float32Array;
  private filled = 0;
  private readonly encoding: PcmEncoding;

  constructor(options: AudioWorkletNodeOptions) {
    super(options);
    const { chunkFrames, encoding } = options.processorOptions as CaptureOptions;
    this.chunk = new Float32Array(chunkFrames);
    this.encoding = encoding;
  }

  process(inputs: Float32Array[][]): boolean {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true;
    const frames = channels[0].length;
    for (let i = 0; i < frames; i++) {
      // The relay call is mono: mix down whatever the microphone delivers.
      let sum = 0;
      for (const channel of channels) sum += channel[i];
      this.chunk[this.filled++] = sum / channels.length;
      if (this.filled === this.chunk.length) {
        const encoded = encodeChunk(this.chunk, this.encoding);
        this.port.postMessage(encoded, [encoded]);
        this.filled = 0;
      }
    }
    return true;
  }
}

class PcmPlayer extends AudioWorkletProcessor {
  private readonly ring = new Float32Array(Math.ceil(sampleRate * 2));
  private readPos = 0;
  private writePos = 0;
  private buffering = true;
  private readonly encoding: PcmEncoding;

  constructor(options: AudioWorkletNodeOptions) {
    super(options);
    this.encoding = (options.processorOptions as PlayerOptions).encoding;
    this.port.onmessage = (e: MessageEvent<ArrayBuffer>) => this.enqueue(decodeChunk(e.data, this.encoding));
  }

  private get queued(): number {
    return (this.writePos - this.readPos + this.ring.length) % this.ring.length;
  }

  private enqueue(samples: Float32Array): void {
    for (let i = 0; i < samples.length; i++) {
      this.ring[this.writePos] = samples[i];
      this.writePos = (this.writePos + 1) % this.ring.length;
    }
    if (this.queued > MAX_BACKLOG_SECONDS * sampleRate) {
      this.readPos = (this.writePos - Math.floor(PREBUFFER_SECONDS * sampleRate) + this.ring.length) % this.ring.length;
    }
  }

  process(_inputs: Float32Array[][], outputs: Float32Array[][]): boolean {
    const out = outputs[0][0];
    if (this.buffering && this.queued >= PREBUFFER_SECONDS * sampleRate) this.buffering = false;
    for (let i = 0; i < out.length; i++) {
      if (this.buffering || this.queued === 0) {
        // Ran dry: play silence and wait for a prebuffer's worth again.
        this.buffering = true;
        out[i] = 0;
        continue;
      }
      out[i] = this.ring[this.readPos];
      this.readPos = (this.readPos + 1) % this.ring.length;
    }
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    return true;
  }
}

registerProcessor("pcm-capture", PcmCapture);
registerProcessor("pcm-player", PcmPlayer);

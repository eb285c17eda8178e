// Audio level of a stream, as the RMS of its latest samples, for the page's level meters.

export class LevelMeter {
  private readonly source: MediaStreamAudioSourceNode;
  private readonly analyser: AnalyserNode;
  private readonly samples: Float32Array<ArrayBuffer>;

  constructor(audio: AudioContext, stream: MediaStream) {
    this.source = audio.createMediaStreamSource(stream);
    this.analyser = audio.createAnalyser();
    // 2048 samples ≈ 43 ms at 48 kHz: long enough to span a few cycles of a voice's pitch.
    this.analyser.fftSize = 2048;
    this.samples = new Float32Array(this.analyser.fftSize);
    this.source.connect(this.analyser);
  }

  /** Root mean square of the latest samples, 0 (silence) to 1 (full scale). */
  rms(): number {
    this.analyser.getFloatTimeDomainData(this.samples);
    let sum = 0;
    for (const s of this.samples) sum += s * s;
    return Math.sqrt(sum / this.samples.length);
  }

  disconnect(): void {
    this.source.disconnect();
  }
}

/** An RMS as dBFS, floored at -100 for silence. */
export function dbfs(rms: number): number {
  return rms > 1e-5 ? 20 * Math.log10(rms) : -100;
}

// WAV files for SIP's PlayWavFiles: decoding (by @echogarden/wave-codec, a maintained RIFF/WAVE
// decoder) and conversion of the samples into the format a call's audio relay negotiated
// (seed 003: uint8, int8, int16, int32, float32, little-endian, interleaved).
//
// Conversions supported, and how exact they are:
// - Same sample format and channel count: the WAV's data bytes, unchanged (byte-exact).
// - Integer to wider integer (8→16→24→32 bit): shifted left, exact. To narrower: shifted right
//   (the low bits are dropped). WAV's 8-bit PCM is unsigned (offset 128), seed-003 int8 signed.
// - Integer to float32: v / 2^(bits-1), exact for sources up to 24 bits.
// - Float (32/64-bit, and A-law/µ-law, which the library expands to float) to integer:
//   round(x · 2^(bits-1)), clamped to the integer range. Float64 to float32: nearest float32.
// - Channels: equal counts pass through; mono to N channels duplicates; N channels to mono
//   averages. Other layouts (e.g. 6 → 2) are refused.
// - Sample rate: not converted. A WAV whose rate differs from the call's is refused with a
//   message naming both rates; resampling would need a filter this service does not carry.
import { bufferToFloat32Channels, decodeWaveToBuffer, interleaveChannels, SampleFormat as WaveSampleFormat } from "@echogarden/wave-codec";
import { SampleFormat, type AudioParams } from "./audio-codec";

export type PcmEncoding = "uint8" | "int16" | "int24" | "int32" | "float32" | "float64" | "alaw" | "mulaw";

/** A decoded WAV: interleaved little-endian frames as stored in the file. */
export interface PcmAudio {
  sampleRate: number;
  channels: number;
  encoding: PcmEncoding;
  data: Uint8Array;
}

/** The WAV is malformed, or it cannot be converted to the call's format. */
export class WavError extends Error {
  override readonly name = "WavError";
}

const BYTES: Record<PcmEncoding, number> = { uint8: 1, int16: 2, int24: 3, int32: 4, float32: 4, float64: 8, alaw: 1, mulaw: 1 };

export function bytesPerSample(format: SampleFormat): number {
  return format === SampleFormat.Uint8 || format === SampleFormat.Int8 ? 1 : format === SampleFormat.Int16 ? 2 : 4;
}

export function decodeWav(file: Uint8Array): PcmAudio {
  let decoded: ReturnType<typeof decodeWaveToBuffer>;
  try {
    // Strict about truncation: a file cut short is refused rather than played in part.
    decoded = decodeWaveToBuffer(file, false, true);
  } catch (err) {
    throw new WavError(`not a playable WAV file: ${(err as Error).message}`);
  }
  const encoding = encodingOf(decoded.sampleFormat, decoded.bitDepth);
  const { sampleRate, channelCount: channels } = decoded;
  if (sampleRate < 1 || channels < 1 || channels > 0xffff) throw new WavError(`WAV declares ${sampleRate} Hz and ${channels} channels`);
  const frameBytes = channels * BYTES[encoding];
  const data = decoded.decodedAudioBuffer;
  if (data.byteLength === 0) throw new WavError("WAV holds no audio");
  if (data.byteLength % frameBytes !== 0) throw new WavError(`WAV data (${data.byteLength} bytes) is not a whole number of ${frameBytes}-byte frames`);
  return { sampleRate, channels, encoding, data };
}

/** The WAV's samples in the call's format, ready to be cut into data packets. */
export function convertPcm(pcm: PcmAudio, target: Pick<AudioParams, "sampleRate" | "channels" | "format">): Uint8Array {
  if (pcm.sampleRate !== target.sampleRate) {
    throw new WavError(`WAV is ${pcm.sampleRate} Hz but the call's audio is ${target.sampleRate} Hz; resampling is not supported`);
  }
  if (pcm.channels !== target.channels && pcm.channels !== 1 && target.channels !== 1) {
    throw new WavError(`WAV has ${pcm.channels} channels but the call's audio has ${target.channels}; only equal counts, mono to many and many to mono convert`);
  }
  if (sameFormat(pcm.encoding, target.format) && pcm.channels === target.channels) return pcm.data;

  const source = readSamples(pcm);
  const frames = source.values.length / pcm.channels;
  const mixed = mixChannels(source.values, pcm.channels, target.channels, source.bits !== null);
  const out = new Uint8Array(frames * target.channels * bytesPerSample(target.format));
  const view = new DataView(out.buffer);
  const width = bytesPerSample(target.format);
  for (let i = 0; i < mixed.length; i++) writeSample(view, i * width, target.format, mixed[i], source.bits);
  return out;
}

function encodingOf(format: WaveSampleFormat, bits: number): PcmEncoding {
  switch (format) {
    case WaveSampleFormat.PCM:
      if (bits === 8) return "uint8";
      if (bits === 16 || bits === 24 || bits === 32) return `int${bits}`;
      break;
    case WaveSampleFormat.Float:
      if (bits === 32 || bits === 64) return `float${bits}`;
      break;
    case WaveSampleFormat.Alaw:
      return "alaw";
    case WaveSampleFormat.Mulaw:
      return "mulaw";
  }
  throw new WavError(`WAV sample format ${format} with ${bits} bits is not supported`);
}

function sameFormat(encoding: PcmEncoding, format: SampleFormat): boolean {
  return (encoding === "uint8" && format === SampleFormat.Uint8) || (encoding === "int16" && format === SampleFormat.Int16)
    || (encoding === "int32" && format === SampleFormat.Int32) || (encoding === "float32" && format === SampleFormat.Float32);
}

/** Interleaved samples as numbers: signed integers of `bits` bits, or floats when `bits` is null. */
function readSamples(pcm: PcmAudio): { values: Float64Array; bits: number | null } {
  const { data, encoding } = pcm;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const n = data.byteLength / BYTES[encoding];
  const values = new Float64Array(n);
  switch (encoding) {
    case "uint8":
      for (let i = 0; i < n; i++) values[i] = data[i] - 128;
      return { values, bits: 8 };
    case "int16":
      for (let i = 0; i < n; i++) values[i] = view.getInt16(i * 2, true);
      return { values, bits: 16 };
    case "int24":
      for (let i = 0; i < n; i++) values[i] = (view.getUint8(i * 3) | (view.getUint8(i * 3 + 1) << 8) | (view.getInt8(i * 3 + 2) << 16));
      return { values, bits: 24 };
    case "int32":
      for (let i = 0; i < n; i++) values[i] = view.getInt32(i * 4, true);
      return { values, bits: 32 };
    case "float32":
      for (let i = 0; i < n; i++) values[i] = view.getFloat32(i * 4, true);
      return { values, bits: null };
    case "float64":
      for (let i = 0; i < n; i++) values[i] = view.getFloat64(i * 8, true);
      return { values, bits: null };
    case "alaw":
    case "mulaw": {
      const channels = bufferToFloat32Channels(data, pcm.channels, 8,
        encoding === "alaw" ? WaveSampleFormat.Alaw : WaveSampleFormat.Mulaw);
      return { values: Float64Array.from(interleaveChannels(channels)), bits: null };
    }
  }
}

function mixChannels(values: Float64Array, from: number, to: number, integer: boolean): Float64Array {
  if (from === to) return values;
  const frames = values.length / from;
  const out = new Float64Array(frames * to);
  for (let f = 0; f < frames; f++) {
    if (from === 1) {
      for (let c = 0; c < to; c++) out[f * to + c] = values[f];
    } else {
      let sum = 0;
      for (let c = 0; c < from; c++) sum += values[f * from + c];
      out[f] = integer ? Math.round(sum / from) : sum / from;
    }
  }
  return out;
}

const TARGET_BITS: Record<SampleFormat, number> = {
  [SampleFormat.Uint8]: 8, [SampleFormat.Int8]: 8, [SampleFormat.Int16]: 16, [SampleFormat.Int32]: 32, [SampleFormat.Float32]: 32,
};

function writeSample(view: DataView, offset: number, format: SampleFormat, value: number, sourceBits: number | null): void {
  if (format === SampleFormat.Float32) {
    view.setFloat32(offset, sourceBits === null ? value : value / 2 ** (sourceBits - 1), true);
    return;
  }
  const bits = TARGET_BITS[format];
  let v: number;
  if (sourceBits === null) {
    const max = 2 ** (bits - 1);
    v = Math.min(max - 1, Math.max(-max, Math.round(value * max)));
  } else {
    v = bits >= sourceBits ? value * 2 ** (bits - sourceBits) : Math.floor(value / 2 ** (sourceBits - bits));
  }
  switch (format) {
    case SampleFormat.Uint8: view.setUint8(offset, v + 128); return;
    case SampleFormat.Int8: view.setInt8(offset, v); return;
    case SampleFormat.Int16: view.setInt16(offset, v, true); return;
    case SampleFormat.Int32: view.setInt32(offset, v, true); return;
  }
}

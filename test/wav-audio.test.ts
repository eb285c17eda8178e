// WAV decoding and conversion to the relay's formats (codecs/wav-audio.ts).
import { encodeWaveFromBuffer, SampleFormat as WaveFormat } from "@echogarden/wave-codec";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SampleFormat } from "../codecs/audio-codec";
import { convertPcm, decodeWav, WavError } from "../codecs/wav-audio";

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const int16 = (...v: number[]) => bytesOf(new Int16Array(v));
const wav = (data: Uint8Array, bits: 8 | 16 | 24 | 32 | 64, format = WaveFormat.PCM, channels = 1, rate = 16_000) =>
  encodeWaveFromBuffer(data, rate, channels, bits, format);
const mono16k = (format: SampleFormat) => ({ sampleRate: 16_000, channels: 1, format });

describe("decodeWav", () => {
  it("reads 8, 16, 24 and 32-bit integer and 32/64-bit float PCM", () => {
    expect(decodeWav(wav(new Uint8Array([1, 2]), 8)).encoding).toBe("uint8");
    expect(decodeWav(wav(int16(1, 2), 16)).encoding).toBe("int16");
    expect(decodeWav(wav(new Uint8Array(6), 24)).encoding).toBe("int24");
    expect(decodeWav(wav(new Uint8Array(8), 32)).encoding).toBe("int32");
    expect(decodeWav(wav(new Uint8Array(8), 32, WaveFormat.Float)).encoding).toBe("float32");
    expect(decodeWav(wav(new Uint8Array(16), 64, WaveFormat.Float)).encoding).toBe("float64");
  });

  it("refuses bytes that are not a WAV file", () => {
    expect(() => decodeWav(new TextEncoder().encode("not a wav at all"))).toThrow(WavError);
  });

  it("refuses a WAV file cut short", () => {
    const file = wav(int16(1, 2, 3, 4), 16);
    expect(() => decodeWav(file.subarray(0, file.length - 3))).toThrow(WavError);
  });

  it("refuses a WAV whose data is not whole frames", () => {
    expect(() => decodeWav(wav(new Uint8Array(3), 16))).toThrow(/whole number/);
  });

  it("throws only WavError on arbitrary bytes, and never hangs", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (junk) => {
      try {
        decodeWav(junk);
      } catch (err) {
        expect(err).toBeInstanceOf(WavError);
      }
    }));
  });
});

describe("convertPcm", () => {
  it("passes samples through byte for byte when the formats match", () => {
    const data = int16(1, -2, 32767, -32768);
    expect(convertPcm(decodeWav(wav(data, 16)), mono16k(SampleFormat.Int16))).toEqual(data);
  });

  it("widens 16-bit to 32-bit exactly and narrows back to the same samples", () => {
    const data = int16(1, -2, 32767, -32768);
    const wide = convertPcm(decodeWav(wav(data, 16)), mono16k(SampleFormat.Int32));
    expect(Array.from(new Int32Array(wide.buffer))).toEqual([65536, -131072, 32767 * 65536, -32768 * 65536]);
    expect(convertPcm(decodeWav(wav(wide, 32)), mono16k(SampleFormat.Int16))).toEqual(data);
  });

  it("converts 16-bit samples to float32 as v / 32768", () => {
    const out = convertPcm(decodeWav(wav(int16(16384, -32768), 16)), mono16k(SampleFormat.Float32));
    expect(Array.from(new Float32Array(out.buffer))).toEqual([0.5, -1]);
  });

  it("converts 24-bit samples to 16-bit by dropping the low byte", () => {
    const data = new Uint8Array([0x34, 0x12, 0x7f, 0x00, 0x00, 0x80]); // 0x7f1234, -0x800000
    const out = convertPcm(decodeWav(wav(data, 24)), mono16k(SampleFormat.Int16));
    expect(Array.from(new Int16Array(out.buffer))).toEqual([0x7f12, -0x8000]);
  });

  it("converts WAV's unsigned 8-bit to signed int8 and back to uint8", () => {
    const pcm = decodeWav(wav(new Uint8Array([0, 128, 255]), 8));
    expect(Array.from(new Int8Array(convertPcm(pcm, mono16k(SampleFormat.Int8)).buffer))).toEqual([-128, 0, 127]);
    expect(convertPcm(pcm, mono16k(SampleFormat.Uint8))).toEqual(new Uint8Array([0, 128, 255]));
  });

  it("rounds and clamps float samples into integers", () => {
    const floats = bytesOf(new Float32Array([0.5, -1, 1.5, -2]));
    const out = convertPcm(decodeWav(wav(floats, 32, WaveFormat.Float)), mono16k(SampleFormat.Int16));
    expect(Array.from(new Int16Array(out.buffer))).toEqual([16384, -32768, 32767, -32768]);
  });

  it("duplicates mono into every channel and averages channels into mono", () => {
    const stereo = convertPcm(decodeWav(wav(int16(100, -100), 16)), { sampleRate: 16_000, channels: 2, format: SampleFormat.Int16 });
    expect(Array.from(new Int16Array(stereo.buffer))).toEqual([100, 100, -100, -100]);
    const mono = convertPcm(decodeWav(wav(int16(100, 300, -10, -20), 16, WaveFormat.PCM, 2)), mono16k(SampleFormat.Int16));
    expect(Array.from(new Int16Array(mono.buffer))).toEqual([200, -15]);
  });

  it("refuses a channel layout it cannot map", () => {
    const six = decodeWav(wav(new Uint8Array(24), 16, WaveFormat.PCM, 6));
    expect(() => convertPcm(six, { sampleRate: 16_000, channels: 2, format: SampleFormat.Int16 })).toThrow(WavError);
  });

  it("refuses a sample rate other than the call's", () => {
    expect(() => convertPcm(decodeWav(wav(int16(1), 16, WaveFormat.PCM, 1, 8_000)), mono16k(SampleFormat.Int16)))
      .toThrow(/8000 Hz/);
  });
});

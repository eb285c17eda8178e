// The seed-003 wire codec: byte layout from the seed, round trips, and errors as values with codes.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  AudioMessageType, AudioProtocolError, decode, encode, isDataPacket, SampleFormat, type AudioPacket, type AudioParams,
} from "../codecs/audio-codec";

const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const params: fc.Arbitrary<AudioParams> = fc.record({
  sampleRate: fc.integer({ min: 1, max: 0xffff_ffff }),
  channels: fc.integer({ min: 1, max: 0xffff }),
  format: fc.constantFrom(...Object.values(SampleFormat)),
  chunkSize: u32,
});
const body = fc.uint8Array({ maxLength: 64 });
const username = fc.string({ unit: "binary", maxLength: 40 });

const packet: fc.Arbitrary<AudioPacket> = fc.oneof(
  fc.record({ type: fc.constant(AudioMessageType.Handshake), params, username, optional: body }),
  fc.constant({ type: AudioMessageType.UserNotFound }),
  fc.record({ type: fc.constant(AudioMessageType.CounterProposal), params, optional: body }),
  fc.record({ type: fc.constantFrom(AudioMessageType.Reject, AudioMessageType.Accept, AudioMessageType.Drop), optional: body }),
  fc.record({ type: fc.constant(AudioMessageType.Data), data: body }),
);

/** Valid packets written field by field from the seed's tables, independently of `encode`. */
const validBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.tuple(params, username, body).map(([p, name, optional]) => {
    const nameBytes = new TextEncoder().encode(name);
    return write(0, [...paramFields(p), ["u16", nameBytes.length]], [nameBytes, optional]);
  }),
  fc.constant(write(1, [], [])),
  fc.tuple(params, body).map(([p, optional]) => write(2, paramFields(p), [optional])),
  fc.tuple(fc.constantFrom(3, 4, 5, 6), body).map(([type, rest]) => write(type, [], [rest])),
);

type Field = ["u8" | "u16" | "u32", number];

function paramFields(p: AudioParams): Field[] {
  return [["u32", p.sampleRate], ["u16", p.channels], ["u8", p.format], ["u32", p.chunkSize]];
}

function write(type: number, fields: Field[], tails: Uint8Array[]): Uint8Array {
  const size = { u8: 1, u16: 2, u32: 4 };
  const length = 6 + fields.reduce((n, [kind]) => n + size[kind], 0) + tails.reduce((n, t) => n + t.length, 0);
  const out = new Uint8Array(length);
  const view = new DataView(out.buffer);
  view.setUint32(0, length, true);
  view.setUint16(4, type, true);
  let at = 6;
  for (const [kind, value] of fields) {
    if (kind === "u8") view.setUint8(at, value);
    else if (kind === "u16") view.setUint16(at, value, true);
    else view.setUint32(at, value, true);
    at += size[kind];
  }
  for (const tail of tails) { out.set(tail, at); at += tail.length; }
  return out;
}

function protocolError(frame: Uint8Array): AudioProtocolError {
  try {
    decode(frame);
  } catch (err) {
    if (err instanceof AudioProtocolError) return err;
    throw err;
  }
  throw new Error("decode accepted the frame");
}

describe("audio codec layout", () => {
  it("writes a handshake at the seed's offsets, little-endian", () => {
    const bytes = encode({ type: AudioMessageType.Handshake, username: "bob", optional: new Uint8Array([0xaa]),
      params: { sampleRate: 48_000, channels: 2, format: SampleFormat.Float32, chunkSize: 960 } });
    const view = new DataView(bytes.buffer);
    expect(bytes.length).toBe(19 + 3 + 1);
    expect(view.getUint32(0, true)).toBe(23);
    expect(view.getUint16(4, true)).toBe(0);
    expect(view.getUint32(6, true)).toBe(48_000);
    expect(view.getUint16(10, true)).toBe(2);
    expect(view.getUint8(12)).toBe(4);
    expect(view.getUint32(13, true)).toBe(960);
    expect(view.getUint16(17, true)).toBe(3);
    expect(new TextDecoder().decode(bytes.subarray(19, 22))).toBe("bob");
    expect(bytes[22]).toBe(0xaa);
  });

  it("writes user-not-found as a bare 6-byte header of type 1", () => {
    expect(encode({ type: AudioMessageType.UserNotFound })).toEqual(new Uint8Array([6, 0, 0, 0, 1, 0]));
  });

  it("decodes a data packet's body as a view of the received buffer, not a copy", () => {
    const frame = encode({ type: AudioMessageType.Data, data: new Uint8Array([1, 2, 3]) }).buffer as ArrayBuffer;
    const decoded = decode(frame);
    expect(decoded.type === AudioMessageType.Data && decoded.data.buffer).toBe(frame);
  });
});

describe("audio codec round trips", () => {
  it("decodes every encoded packet to the packet it came from", () => {
    fc.assert(fc.property(packet, (p) => { expect(decode(encode(p))).toEqual(p); }), { numRuns: 2_000 });
  });

  it("re-encodes every valid packet to the same bytes", () => {
    fc.assert(fc.property(validBytes, (bytes) => { expect(encode(decode(bytes))).toEqual(bytes); }), { numRuns: 2_000 });
  });
});

describe("audio codec: the relay's data-packet check", () => {
  /** What decode makes of a frame: its type, or null when it refuses it. */
  const decodedType = (frame: Uint8Array) => { try { return decode(frame).type; } catch { return null; } };
  const framed = fc.tuple(fc.integer({ min: 0, max: 8 }), fc.uint8Array({ maxLength: 40 })).map(([type, rest]) => write(type, [], [rest]));
  // Data headers whose Length may disagree with the frame, and frames cut short of a header.
  const misframed = fc.tuple(framed, u32, fc.boolean()).map(([frame, length, keep]) => {
    const out = frame.slice();
    if (!keep && out.length >= 4) new DataView(out.buffer).setUint32(0, length, true);
    return out;
  });
  const frames = fc.oneof(validBytes, fc.uint8Array({ maxLength: 64 }), framed, misframed,
    fc.uint8Array({ maxLength: 5 }));

  it("calls a frame a data packet exactly when decode decodes it as one", () => {
    fc.assert(fc.property(frames, (frame) => {
      const copy = frame.slice();
      expect(isDataPacket(copy.buffer)).toBe(decodedType(frame) === AudioMessageType.Data);
    }), { numRuns: 10_000 });
  });
});

describe("audio codec errors", () => {
  const isProtocolError = (frame: Uint8Array) => {
    try {
      decode(frame);
    } catch (err) {
      expect(err).toBeInstanceOf(AudioProtocolError);
      expect([1002, 1007]).toContain((err as AudioProtocolError).closeCode);
    }
  };

  it("throws nothing but AudioProtocolError on random bytes", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), isProtocolError), { numRuns: 5_000 });
  });

  it("throws nothing but AudioProtocolError on random bodies under a consistent header", () => {
    const framed = fc.tuple(fc.integer({ min: 0, max: 8 }), fc.uint8Array({ maxLength: 40 }))
      .map(([type, rest]) => write(type, [], [rest]));
    fc.assert(fc.property(framed, isProtocolError), { numRuns: 5_000 });
  });

  it("throws nothing but AudioProtocolError on mutated valid packets", () => {
    const mutated = fc.tuple(validBytes, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.integer({ min: -20, max: 3 }), fc.boolean())
      .map(([bytes, at, value, resize, fixLength]) => {
        const out = new Uint8Array(Math.max(0, bytes.length + resize));
        out.set(bytes.subarray(0, out.length));
        if (out.length > 0) out[at % out.length] = value;
        // A consistent Length gets the mutation past the first check, into the type's own fields.
        if (fixLength && out.length >= 4) new DataView(out.buffer).setUint32(0, out.length, true);
        return out;
      });
    fc.assert(fc.property(mutated, isProtocolError), { numRuns: 5_000 });
  });

  it("throws nothing but AudioProtocolError on 100 000 random and mutated frames, and decodes only what is well formed", () => {
    const frames = fc.oneof(
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 48 }) },
      { weight: 1, arbitrary: validBytes },
      { weight: 6, arbitrary: fc.tuple(validBytes, fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 }), fc.integer({ min: 0, max: 4 })), { minLength: 1, maxLength: 4 }), fc.boolean())
        .map(([bytes, edits, fixLength]) => {
          let out = Uint8Array.from(bytes);
          for (const [at, value, kind] of edits) {
            const i = out.length ? at % out.length : 0;
            if (kind === 0 && out.length) out[i] = value; // overwrite
            else if (kind === 1) out = out.slice(0, i); // cut
            else if (kind === 2) out = Uint8Array.from([...out.slice(0, i), value, ...out.slice(i)]); // insert
            else if (kind === 3 && out.length) out[i] ^= 1 << (value & 7); // flip a bit
            else out = Uint8Array.from([...out, ...out.slice(i)]); // repeat a tail
          }
          if (fixLength && out.length >= 4) new DataView(out.buffer).setUint32(0, out.length, true);
          return out;
        }) },
    );
    fc.assert(fc.property(frames, (frame) => {
      let packet: AudioPacket;
      try {
        packet = decode(frame);
      } catch (err) {
        expect(err).toBeInstanceOf(AudioProtocolError);
        expect([1002, 1007]).toContain((err as AudioProtocolError).closeCode);
        return;
      }
      // Whatever decodes is a packet the codec itself would write, byte for byte.
      expect(encode(packet)).toEqual(frame);
    }), { numRuns: 100_000 });
  });

  it("refuses a packet shorter than the header with 1002", () => {
    expect(protocolError(new Uint8Array([5, 0, 0, 0, 5])).closeCode).toBe(1002);
  });

  it("refuses a packet whose Length is not the message size with 1002", () => {
    const bytes = encode({ type: AudioMessageType.Accept, optional: new Uint8Array(2) });
    bytes[0] = 7;
    expect(protocolError(bytes).closeCode).toBe(1002);
  });

  it("refuses an unknown message type with 1002", () => {
    expect(protocolError(new Uint8Array([6, 0, 0, 0, 7, 0])).closeCode).toBe(1002);
  });

  it("refuses a handshake cut short before its username length with 1002", () => {
    expect(protocolError(write(0, [["u32", 8000], ["u16", 1], ["u8", 0], ["u32", 0]], [])).closeCode).toBe(1002);
  });

  it("refuses a handshake whose username runs past Length with 1002", () => {
    const bytes = write(0, [["u32", 8000], ["u16", 1], ["u8", 0], ["u32", 0], ["u16", 10]], [new Uint8Array([0x61])]);
    expect(protocolError(bytes).closeCode).toBe(1002);
  });

  it("refuses a user-not-found that carries a body with 1002", () => {
    expect(protocolError(write(1, [], [new Uint8Array(1)])).closeCode).toBe(1002);
  });

  it("refuses an unknown format type with 1007", () => {
    expect(protocolError(write(2, [["u32", 8000], ["u16", 1], ["u8", 5], ["u32", 0]], [])).closeCode).toBe(1007);
  });

  it("refuses a sample rate of 0 Hz with 1007", () => {
    expect(protocolError(write(2, [["u32", 0], ["u16", 1], ["u8", 2], ["u32", 0]], [])).closeCode).toBe(1007);
  });

  it("refuses a channel count of 0 with 1007", () => {
    expect(protocolError(write(2, [["u32", 8000], ["u16", 0], ["u8", 2], ["u32", 0]], [])).closeCode).toBe(1007);
  });

  it("refuses a username that is not UTF-8 with 1007", () => {
    const bytes = write(0, [["u32", 8000], ["u16", 1], ["u8", 0], ["u32", 0], ["u16", 2]], [new Uint8Array([0xc3, 0x28])]);
    expect(protocolError(bytes).closeCode).toBe(1007);
  });

  it("refuses to encode a format outside 0..4", () => {
    expect(() => encode({ type: AudioMessageType.CounterProposal, optional: new Uint8Array(0),
      params: { sampleRate: 8000, channels: 1, format: 9 as SampleFormat, chunkSize: 0 } })).toThrow(RangeError);
  });
});

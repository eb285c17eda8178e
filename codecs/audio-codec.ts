// Wire codec of the seed-003 binary audio protocol (docs: PROTOCOLS.md "Binary audio frames").
// Header integers are little-endian; `Length` (u32) counts the whole packet, itself included;
// the message type is a u16. One WebSocket message carries exactly one packet, so `Length`
// must equal the message's size. No `.proto` exists for this format, so this module is the
// one place that knows its layout.
import { INVALID_PAYLOAD, PROTOCOL_ERROR } from "../model/close-codes";

export const AudioMessageType = {
  Handshake: 0,
  UserNotFound: 1,
  CounterProposal: 2,
  Reject: 3,
  Accept: 4,
  Drop: 5,
  Data: 6,
} as const;
export type AudioMessageType = (typeof AudioMessageType)[keyof typeof AudioMessageType];

export const SampleFormat = { Uint8: 0, Int8: 1, Int16: 2, Int32: 3, Float32: 4 } as const;
export type SampleFormat = (typeof SampleFormat)[keyof typeof SampleFormat];

/** What a handshake proposes and a counter-proposal answers with. */
export interface AudioParams {
  /** Hz, u32. */
  sampleRate: number;
  /** u16. */
  channels: number;
  format: SampleFormat;
  /** u32; its unit is the clients' agreement, the server only carries it. */
  chunkSize: number;
}

export type AudioPacket =
  | { type: typeof AudioMessageType.Handshake; params: AudioParams; username: string; optional: Uint8Array }
  | { type: typeof AudioMessageType.UserNotFound }
  | { type: typeof AudioMessageType.CounterProposal; params: AudioParams; optional: Uint8Array }
  | { type: typeof AudioMessageType.Reject | typeof AudioMessageType.Accept | typeof AudioMessageType.Drop; optional: Uint8Array }
  | { type: typeof AudioMessageType.Data; data: Uint8Array };

/** WebSocket close codes (model/close-codes.ts) a malformed packet earns its sender. */
export const CloseCode = {
  /** The bytes do not form a packet: too short, wrong Length, unknown type. */
  ProtocolError: PROTOCOL_ERROR,
  /** The packet is well formed but a value is not: unknown format, bad UTF-8 username. */
  InvalidPayload: INVALID_PAYLOAD,
} as const;

export class AudioProtocolError extends Error {
  override readonly name = "AudioProtocolError";
  constructor(readonly closeCode: typeof PROTOCOL_ERROR | typeof INVALID_PAYLOAD, message: string) {
    super(message);
  }
}

const HEADER_BYTES = 6;
/** Sample rate u32 + channels u16 + format u8 + chunk size u32. */
const PARAMS_BYTES = 11;
const HANDSHAKE_FIXED_BYTES = HEADER_BYTES + PARAMS_BYTES + 2;
const MAX_U16 = 0xffff;
const MAX_U32 = 0xffff_ffff;

const utf8 = new TextEncoder();
// fatal: a username that is not UTF-8 must be refused, not silently turned into U+FFFD.
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export function encode(packet: AudioPacket): Uint8Array {
  switch (packet.type) {
    case AudioMessageType.Handshake: {
      const name = utf8.encode(packet.username);
      if (name.length > MAX_U16) throw new RangeError("username is longer than 65535 bytes");
      const { bytes, view } = allocate(packet.type, HANDSHAKE_FIXED_BYTES + name.length + packet.optional.length);
      writeParams(view, packet.params);
      view.setUint16(HEADER_BYTES + PARAMS_BYTES, name.length, true);
      bytes.set(name, HANDSHAKE_FIXED_BYTES);
      bytes.set(packet.optional, HANDSHAKE_FIXED_BYTES + name.length);
      return bytes;
    }
    case AudioMessageType.UserNotFound:
      return allocate(packet.type, HEADER_BYTES).bytes;
    case AudioMessageType.CounterProposal: {
      const { bytes, view } = allocate(packet.type, HEADER_BYTES + PARAMS_BYTES + packet.optional.length);
      writeParams(view, packet.params);
      bytes.set(packet.optional, HEADER_BYTES + PARAMS_BYTES);
      return bytes;
    }
    case AudioMessageType.Data:
      return withBody(packet.type, packet.data);
    default:
      return withBody(packet.type, packet.optional);
  }
}

/** Reads one packet. Body fields are views into `frame`, not copies: audio data is forwarded as is. */
/** Whether `frame` is a well-formed data packet (6): exactly what decode accepts as one, read off
 * the header without building the packet, for the relay's per-frame path. */
export function isDataPacket(frame: ArrayBuffer): boolean {
  if (frame.byteLength < HEADER_BYTES) return false;
  const view = new DataView(frame);
  return view.getUint32(0, true) === frame.byteLength && view.getUint16(4, true) === AudioMessageType.Data;
}

export function decode(frame: ArrayBuffer | Uint8Array): AudioPacket {
  const bytes = frame instanceof Uint8Array ? frame : new Uint8Array(frame);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < HEADER_BYTES) throw structural(`packet of ${bytes.length} bytes is shorter than the 6-byte header`);
  const length = view.getUint32(0, true);
  if (length !== bytes.length) throw structural(`Length field says ${length} bytes, message has ${bytes.length}`);
  const type = view.getUint16(4, true);
  switch (type) {
    case AudioMessageType.Handshake: {
      requireAtLeast(bytes, HANDSHAKE_FIXED_BYTES, "handshake");
      const params = readParams(view);
      const nameEnd = HANDSHAKE_FIXED_BYTES + view.getUint16(HEADER_BYTES + PARAMS_BYTES, true);
      if (nameEnd > length) throw structural("handshake username runs past Length");
      let username: string;
      try {
        username = strictUtf8.decode(bytes.subarray(HANDSHAKE_FIXED_BYTES, nameEnd));
      } catch {
        throw new AudioProtocolError(CloseCode.InvalidPayload, "handshake username is not valid UTF-8");
      }
      return { type, params, username, optional: bytes.subarray(nameEnd) };
    }
    case AudioMessageType.UserNotFound:
      if (length !== HEADER_BYTES) throw structural("user-not-found carries no body");
      return { type };
    case AudioMessageType.CounterProposal:
      requireAtLeast(bytes, HEADER_BYTES + PARAMS_BYTES, "counter-proposal");
      return { type, params: readParams(view), optional: bytes.subarray(HEADER_BYTES + PARAMS_BYTES) };
    case AudioMessageType.Reject:
    case AudioMessageType.Accept:
    case AudioMessageType.Drop:
      return { type, optional: bytes.subarray(HEADER_BYTES) };
    case AudioMessageType.Data:
      return { type, data: bytes.subarray(HEADER_BYTES) };
    default:
      throw structural(`unknown message type ${type}`);
  }
}

function allocate(type: AudioMessageType, length: number): { bytes: Uint8Array; view: DataView } {
  if (length > MAX_U32) throw new RangeError("packet is longer than a u32 Length can say");
  const bytes = new Uint8Array(length);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, length, true);
  view.setUint16(4, type, true);
  return { bytes, view };
}

function withBody(type: AudioMessageType, body: Uint8Array): Uint8Array {
  const { bytes } = allocate(type, HEADER_BYTES + body.length);
  bytes.set(body, HEADER_BYTES);
  return bytes;
}

function writeParams(view: DataView, params: AudioParams): void {
  requireValidParams(params.sampleRate, params.channels, params.format, (m) => new RangeError(m));
  if (!Number.isInteger(params.chunkSize) || params.chunkSize < 0 || params.chunkSize > MAX_U32) {
    throw new RangeError("chunk size is not a u32");
  }
  view.setUint32(6, params.sampleRate, true);
  view.setUint16(10, params.channels, true);
  view.setUint8(12, params.format);
  view.setUint32(13, params.chunkSize, true);
}

function readParams(view: DataView): AudioParams {
  const sampleRate = view.getUint32(6, true);
  const channels = view.getUint16(10, true);
  const format = view.getUint8(12);
  requireValidParams(sampleRate, channels, format, (m) => new AudioProtocolError(CloseCode.InvalidPayload, m));
  return { sampleRate, channels, format: format as SampleFormat, chunkSize: view.getUint32(13, true) };
}

/** The same rules bind what we send and what we accept: no audio has 0 Hz or 0 channels. */
function requireValidParams(sampleRate: number, channels: number, format: number, fail: (message: string) => Error): void {
  if (!Number.isInteger(sampleRate) || sampleRate < 1 || sampleRate > MAX_U32) throw fail(`sample rate ${sampleRate} is not a positive u32`);
  if (!Number.isInteger(channels) || channels < 1 || channels > MAX_U16) throw fail(`channel count ${channels} is not a positive u16`);
  if (!Number.isInteger(format) || format < SampleFormat.Uint8 || format > SampleFormat.Float32) throw fail(`unknown format type ${format}`);
}

function requireAtLeast(bytes: Uint8Array, min: number, what: string): void {
  if (bytes.length < min) throw structural(`${what} of ${bytes.length} bytes is shorter than its ${min}-byte minimum`);
}

function structural(message: string): AudioProtocolError {
  return new AudioProtocolError(CloseCode.ProtocolError, message);
}

// Seed 003 as the benchmarks' clients speak it: packets (the layout codecs/audio-codec.ts owns,
// written here into Buffers in place, since a ramp sends thousands of frames a second from one
// process), this Worker's room URL, and the handshake → accept exchange that pairs two sockets.
import { signToken } from "../scripts/dev-token.mjs";
import { nextMessage } from "./websocket-client.mjs";

export const HEADER_BYTES = 6;
export const TYPE = { Handshake: 0, Accept: 4, Drop: 5, Data: 6 };
/** 20 ms frames at 48 kHz (the audio benchmark) and at 16 kHz (the load test), 16-bit mono. */
export const WIDEBAND = { sampleRate: 48_000, samplesPerFrame: 960 };
export const NARROWBAND = { sampleRate: 16_000, samplesPerFrame: 320 };

/** Header (Length u32, type u16, little-endian) + `body`. */
export function packet(type, body = Buffer.alloc(0)) {
  const b = Buffer.alloc(HEADER_BYTES + body.length);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt16LE(type, 4);
  b.set(body, HEADER_BYTES);
  return b;
}

export const typeOf = (p) => p.readUInt16LE(4);

/** A call to `callee` proposing 16-bit mono at `format`. */
export function handshake(callee, { sampleRate, samplesPerFrame }) {
  const name = Buffer.from(callee, "utf8");
  const body = Buffer.alloc(13 + name.length);
  body.writeUInt32LE(sampleRate, 0);
  body.writeUInt16LE(1, 4); // mono
  body.writeUInt8(2, 6); // int16
  body.writeUInt32LE(samplesPerFrame, 7);
  body.writeUInt16LE(name.length, 11);
  name.copy(body, 13);
  return packet(TYPE.Handshake, body);
}

/** This Worker's socket for `identity` in `room` (server: a wrangler dev from processes.mjs). */
export async function audioRoomUrl(server, room, identity, secret) {
  return `${server.url}/audio/${room}?access_token=${await signToken(identity, secret)}`;
}

/** `caller` calls `callee` (both sockets open in one room, the callee's as `calleeName`), the
 * callee accepts: after this, data packets flow between the two. */
export async function pairCall(caller, callee, calleeName, format) {
  const rang = nextMessage(callee);
  caller.send(handshake(calleeName, format));
  const ring = await rang;
  if (typeOf(ring) !== TYPE.Handshake) throw new Error(`${calleeName} got type ${typeOf(ring)} instead of a handshake`);
  const accepted = nextMessage(caller);
  callee.send(packet(TYPE.Accept));
  const accept = await accepted;
  if (typeOf(accept) !== TYPE.Accept) throw new Error(`the caller of ${calleeName} got type ${typeOf(accept)} instead of accept`);
}

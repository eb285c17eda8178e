// One Durable Object per audio room (seed 003): the shell around the pairing rules in
// audio-pairing.ts. Each socket is accepted for hibernation, tagged with its identity, and
// carries its pairing state in its attachment, so a call survives the object's eviction and
// nothing is kept in SQLite. Binary frames are relayed as received: the same ArrayBuffer goes
// out to the peer, byte for byte.
import type { Env } from "../worker/env";
import { AudioMessageType, AudioProtocolError, decode, encode } from "../worker/audio-codec";
import { MAX_AUDIO_FRAME_BYTES, NAME_PATTERN } from "../worker/limits";
import { step, type Party, type PairingEffect, type PairingEvent } from "./audio-pairing";
import { closeSocket, HibernatingObject, KEEPALIVE_PING } from "./hibernating-object";

/** Set by the Worker (worker/audio-relay.ts) from the verified token. The room trusts it because
 * only the Worker can reach the object, and the Worker overwrites any value a client sent. */
export const AUDIO_IDENTITY_HEADER = "x-audio-identity";

/** RFC 6455 §7.4.1 codes for frames the protocol does not carry at all. */
const UNSUPPORTED_DATA = 1003;
const MESSAGE_TOO_BIG = 1009;

/** Per-socket state, versioned so a later shape can be told from this one after a deploy. */
interface AudioAttachment extends Party {
  v: 1;
  /** The room closed this socket (protocol error, replaced); its remaining events are ignored. */
  closing?: true;
}

function attachmentOf(ws: WebSocket): AudioAttachment | undefined {
  const attachment = ws.deserializeAttachment() as { v?: number } | null;
  return attachment?.v === 1 ? (attachment as AudioAttachment) : undefined;
}

function attach(ws: WebSocket, attachment: AudioAttachment): void {
  ws.serializeAttachment(attachment);
}

function partyOf({ v: _v, closing: _closing, ...party }: AudioAttachment): Party {
  return party;
}

export class AudioRoom extends HibernatingObject<Env> {
  protected onConnect(ws: WebSocket, request: Request): Response | void {
    const identity = request.headers.get(AUDIO_IDENTITY_HEADER);
    if (!identity || !NAME_PATTERN.test(identity)) return new Response("no identity from the Worker", { status: 400 });
    // A reconnecting client must never be locked out by its own half-dead socket: the newer wins.
    const older = this.socketOf(identity);
    if (older) this.apply(older, attachmentOf(older)!, { type: "replaced", identity });
    this.ctx.acceptWebSocket(ws, [identity]);
    attach(ws, { v: 1, identity, state: "idle" });
  }

  protected onMessage(ws: WebSocket, message: string | ArrayBuffer): void {
    const me = attachmentOf(ws);
    if (!me || me.closing) return;
    this.apply(ws, me, eventFor(me.identity, message), message);
  }

  protected onClose(ws: WebSocket): void {
    const me = attachmentOf(ws);
    if (!me || me.closing) return;
    this.apply(ws, me, { type: "left", identity: me.identity });
    markClosing(ws, me);
  }

  /** Runs one event through the pairing rules: loads the parties it touches, writes back those
   * that changed, then sends and closes. `frame` is the message received, for forwarding. */
  private apply(ws: WebSocket, me: AudioAttachment, event: PairingEvent, frame?: string | ArrayBuffer): void {
    const sockets = new Map<string, WebSocket>([[me.identity, ws]]);
    const parties = new Map<string, Party>([[me.identity, partyOf(me)]]);
    const load = (identity: string) => {
      if (parties.has(identity) || !NAME_PATTERN.test(identity)) return;
      const socket = this.socketOf(identity);
      if (!socket) return;
      sockets.set(identity, socket);
      parties.set(identity, partyOf(attachmentOf(socket)!));
    };
    if (me.peer) load(me.peer);
    if (event.type === "packet" && event.packet.type === AudioMessageType.Handshake) load(event.packet.username);

    const { parties: after, effects } = step(parties, event);
    for (const [identity, party] of after) {
      if (party !== parties.get(identity)) attach(sockets.get(identity)!, { v: 1, ...party });
    }
    for (const effect of effects) this.perform(effect, sockets, frame);
  }

  private perform(effect: PairingEffect, sockets: Map<string, WebSocket>, frame?: string | ArrayBuffer): void {
    const ws = sockets.get(effect.type === "close" ? effect.identity : effect.to);
    if (!ws) return;
    switch (effect.type) {
      case "forward":
        if (frame !== undefined) deliver(ws, frame);
        return;
      case "send":
        deliver(ws, encode(effect.packet));
        return;
      case "close": {
        const attachment = attachmentOf(ws);
        if (attachment) markClosing(ws, attachment);
        closeSocket(ws, effect.code, effect.reason);
        return;
      }
    }
  }

  /** The live socket of `identity` in this room, if any. Sockets the room is closing do not count:
   * they are on their way out, and their identity may already belong to a newer socket. */
  private socketOf(identity: string): WebSocket | undefined {
    return this.ctx.getWebSockets(identity).find((ws) => {
      const attachment = attachmentOf(ws);
      return attachment !== undefined && !attachment.closing;
    });
  }
}

/** The pairing event a WebSocket message stands for. Text frames are not part of the protocol
 * (keep-alive "ping" is answered by the runtime and never gets here). */
function eventFor(from: string, message: string | ArrayBuffer): PairingEvent {
  if (typeof message === "string") {
    return { type: "violation", from, code: UNSUPPORTED_DATA,
      reason: `text frames are not part of the audio protocol (only "${KEEPALIVE_PING}" keep-alives)` };
  }
  if (message.byteLength > MAX_AUDIO_FRAME_BYTES) {
    return { type: "violation", from, code: MESSAGE_TOO_BIG,
      reason: `frame of ${message.byteLength} bytes exceeds ${MAX_AUDIO_FRAME_BYTES}` };
  }
  try {
    return { type: "packet", from, packet: decode(message) };
  } catch (err) {
    if (!(err instanceof AudioProtocolError)) throw err;
    return { type: "violation", from, code: err.closeCode, reason: err.message };
  }
}

/** A send to a socket that is closing under us fails; its own close event will end its call,
 * so the failure is only worth a log line, not an exception that would abort the other effects. */
function deliver(ws: WebSocket, message: string | ArrayBuffer | Uint8Array): void {
  try {
    ws.send(message);
  } catch (err) {
    console.warn("audio relay send failed", { error: String(err) });
  }
}

function markClosing(ws: WebSocket, attachment: AudioAttachment): void {
  try {
    attach(ws, { ...attachment, closing: true });
  } catch {
    // Already closed: the runtime drops its attachment and will report no more events for it.
  }
}

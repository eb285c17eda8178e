// One Durable Object per audio room (seed 003): the shell around the pairing rules in
// audio-pairing.ts. Each socket is accepted for hibernation, tagged with its identity, and
// carries its pairing state in its attachment, so a call survives the object's eviction and
// nothing is kept in SQLite. Binary frames are relayed as received: the same ArrayBuffer goes
// out to the peer, byte for byte.
import { AudioMessageType, AudioProtocolError, decode, encode, isDataPacket } from "../codecs/audio-codec";
import {
  AUDIO_KEEPALIVE_LEASE_MS, AUDIO_RING_TIMEOUT_MS, AUDIO_SEEN_RESOLUTION_MS, AUDIO_SWEEP_MS, MAX_AUDIO_FRAME_BYTES,
  NAME_PATTERN,
} from "../model/limits";
import { relaysDataAsIs, step, type Party, type PairingEffect, type PairingEvent } from "../model/audio-pairing";
import { closeSocket, HibernatingObject, KEEPALIVE_PING, socketAttachments } from "./hibernating-object";
import { Code } from "@connectrpc/connect";
import type { LeaveReason, OperatorParticipant, OperatorRoom } from "../model/operator-events";
import { failure, success, type Result } from "../model/result";
import { GOING_AWAY, MESSAGE_TOO_BIG, NORMAL_CLOSURE, UNSUPPORTED_DATA } from "../model/close-codes";
import { AudioRoomOperator } from "./audio-room-operator";

/** Set by the Worker (worker/audio-relay.ts) from the verified token. The room trusts it because
 * only the Worker can reach the object, and the Worker overwrites any value a client sent. */
export const AUDIO_IDENTITY_HEADER = "x-audio-identity";

/** States of a call that is set up but not answered yet: the ring timeout runs. */
const UNANSWERED: ReadonlySet<string> = new Set(["calling", "ringing", "considering", "countering"]);

/** Per-socket state, versioned so a later shape can be told from this one after a deploy. */
interface AudioAttachment extends Party {
  v: 1;
  /** The room closed this socket (protocol error, replaced); its remaining events are ignored. */
  closing?: true;
  /** When the party entered its current pairing state (ms): the ring timeout counts from it. */
  since?: number;
  /** When the socket last sent a frame (ms, to AUDIO_SEEN_RESOLUTION_MS): a sign of life. */
  seen?: number;
}

const audioAttachments = socketAttachments<AudioAttachment>(1);
const attachmentOf = audioAttachments.get;
const attach = audioAttachments.set;

function partyOf({ v: _v, closing: _closing, since: _since, seen: _seen, ...party }: AudioAttachment): Party {
  return party;
}

export class AudioRoom extends HibernatingObject<Env> {
  /** The sweep alarm is known to be set. Memory only: after a wake the room asks storage once. */
  private sweepArmed = false;
  /** The live socket of each identity as last found (socketOf): looking it up among the room's
   * sockets on every frame cost as much as relaying it. Checked on use, rebuilt after a wake. */
  private readonly liveSockets = new Map<string, WebSocket>();
  /** Who is in the room, for operators (audio-room-operator.ts); made on first use after a wake. */
  private operatorView: AudioRoomOperator | undefined;

  protected onConnect(ws: WebSocket, request: Request): Response | void {
    const identity = request.headers.get(AUDIO_IDENTITY_HEADER);
    if (!identity || !NAME_PATTERN.test(identity)) return new Response("no identity from the Worker", { status: 400 });
    // A reconnecting client must never be locked out by its own half-dead socket: the newer wins.
    const older = this.socketOf(identity);
    if (older) this.apply(older, attachmentOf(older)!, { type: "replaced", identity });
    this.ctx.acceptWebSocket(ws, [identity]);
    attach(ws, { v: 1, identity, state: "idle" });
    this.liveSockets.set(identity, ws);
    this.noteMembers();
  }

  // ---- RoomService (worker/room-service.ts) ------------------------------------------------

  async operatorRoom(): Promise<Result<{ room: OperatorRoom; participants: OperatorParticipant[] }>> {
    const view = this.operator.view();
    return view ? success(view) : failure(Code.NotFound, "requested room does not exist");
  }

  /** An operator removes one user, or everyone (DeleteRoom): its call ends (the peer gets a drop) and
   * its socket closes. */
  async endByOperator(reason: "participant_removed" | "room_deleted", identity?: string): Promise<Result<void>> {
    if (!this.operator.view()) return failure(Code.NotFound, "requested room does not exist");
    const sockets = this.ctx.getWebSockets().filter((ws) => isLive(ws) && (identity === undefined || attachmentOf(ws)!.identity === identity));
    if (!sockets.length) return failure(Code.NotFound, "participant does not exist");
    for (const ws of sockets) {
      const me = attachmentOf(ws);
      if (!me || me.closing) continue;
      this.apply(ws, me, { type: "left", identity: me.identity }, undefined, Date.now(), reason);
      markClosing(ws, attachmentOf(ws) ?? me);
      closeSocket(ws, NORMAL_CLOSURE, reason === "room_deleted" ? "the room was deleted by an operator" : "removed by an operator");
    }
    this.noteMembers(reason);
    return success(undefined);
  }

  private get operator(): AudioRoomOperator {
    return this.operatorView ??= new AudioRoomOperator(this.ctx, this.env, this.ctx.id.name ?? "");
  }

  /** Records who is in the room now, if that changed (one write per join or leave, none per frame). */
  private noteMembers(removed?: LeaveReason): void {
    const live = new Set(this.ctx.getWebSockets().flatMap((ws) => (isLive(ws) ? [attachmentOf(ws)!.identity] : [])));
    this.operator.note([...live], removed);
  }

  /** Whether `identity` has a live socket here (HostObject.takeRoomSeat checks its seats). */
  async holds(identity: string): Promise<boolean> {
    return this.socketOf(identity) !== undefined;
  }

  protected onMessage(ws: WebSocket, message: string | ArrayBuffer): void {
    let me = attachmentOf(ws);
    if (!me || me.closing) return;
    const now = Date.now();
    if (now - (me.seen ?? 0) >= AUDIO_SEEN_RESOLUTION_MS) {
      me = { ...me, seen: now };
      attach(ws, me);
    }
    // Audio between the two parties of a call: forwarded as received, as step would (see
    // relaysDataAsIs), without building the event, the parties and the transition per frame.
    if (typeof message !== "string" && message.byteLength <= MAX_AUDIO_FRAME_BYTES && isDataPacket(message)
      && me.peer !== undefined) {
      const peerSocket = this.socketOf(me.peer);
      const peer = peerSocket && attachmentOf(peerSocket);
      if (peer && relaysDataAsIs(me, peer)) return deliver(peerSocket, message);
    }
    this.apply(ws, me, eventFor(me.identity, message), message);
  }

  protected async onAlarm(): Promise<void> {
    this.sweepArmed = false;
    await this.operator.alarm();
    this.sweep(Date.now());
    if (this.callInProgress()) await this.armSweep();
  }

  /**
   * Ends what the clock has ended, as of `now`: a socket that kept alive with pings and then went
   * silent for AUDIO_KEEPALIVE_LEASE_MS is dead (closed with 1001, its peer gets a drop), and a
   * call unanswered for AUDIO_RING_TIMEOUT_MS ends with a drop to both. Run by the alarm; tests
   * pass a later `now` to stand for the time passing.
   */
  sweep(now: number): void {
    for (const ws of this.ctx.getWebSockets()) {
      // Read afresh for every socket: ending one party's call changes its peer's attachment.
      const me = attachmentOf(ws);
      if (!me || me.closing) continue;
      const pinged = this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime();
      if (pinged !== undefined && Math.max(pinged, me.seen ?? 0) <= now - AUDIO_KEEPALIVE_LEASE_MS) {
        this.apply(ws, me, { type: "violation", from: me.identity, code: GOING_AWAY,
          reason: `no keep-alive for ${AUDIO_KEEPALIVE_LEASE_MS / 1000} s` }, undefined, now);
      } else if (UNANSWERED.has(me.state) && (me.since ?? now) <= now - AUDIO_RING_TIMEOUT_MS) {
        this.apply(ws, me, { type: "ring_timeout", identity: me.identity }, undefined, now);
      }
    }
  }

  protected onClose(ws: WebSocket): void {
    const me = attachmentOf(ws);
    if (!me || me.closing) return;
    this.apply(ws, me, { type: "left", identity: me.identity });
    markClosing(ws, me);
    this.noteMembers();
  }

  /** Runs one event through the pairing rules: loads the parties it touches, writes back those
   * that changed, then sends and closes. `frame` is the message received, for forwarding. */
  private apply(ws: WebSocket, me: AudioAttachment, event: PairingEvent, frame?: string | ArrayBuffer,
    now = Date.now(), removed?: LeaveReason): void {
    const sockets = new Map<string, WebSocket>([[me.identity, ws]]);
    const attachments = new Map<string, AudioAttachment>([[me.identity, me]]);
    const parties = new Map<string, Party>([[me.identity, partyOf(me)]]);
    const load = (identity: string) => {
      if (parties.has(identity) || !NAME_PATTERN.test(identity)) return;
      const socket = this.socketOf(identity);
      if (!socket) return;
      const attachment = attachmentOf(socket)!;
      sockets.set(identity, socket);
      attachments.set(identity, attachment);
      parties.set(identity, partyOf(attachment));
    };
    if (me.peer) load(me.peer);
    if (event.type === "packet" && event.packet.type === AudioMessageType.Handshake) load(event.packet.username);

    const { parties: after, effects } = step(parties, event);
    for (const [identity, party] of after) {
      if (party === parties.get(identity)) continue;
      const before = attachments.get(identity);
      const since = before?.state === party.state && before.since !== undefined ? before.since : now;
      attach(sockets.get(identity)!, { v: 1, ...party, since, ...(before?.seen !== undefined ? { seen: before.seen } : {}) });
    }
    for (const effect of effects) this.perform(effect, sockets, frame);
    // A socket the rules closed has left the room (one replaced by its identity's newer socket has not).
    if (event.type !== "replaced" && effects.some((e) => e.type === "close")) this.noteMembers(removed);
    if (!this.sweepArmed && [...after.values()].some((p) => p.state !== "idle")) {
      this.sweepArmed = true;
      this.ctx.waitUntil(this.armSweep());
    }
  }

  /** Sets the sweep alarm unless one is already set (it may be, from before a wake). */
  private async armSweep(): Promise<void> {
    this.sweepArmed = true;
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now() + AUDIO_SWEEP_MS);
  }

  private callInProgress(): boolean {
    return this.ctx.getWebSockets().some((ws) => {
      const attachment = attachmentOf(ws);
      return attachment !== undefined && !attachment.closing && attachment.state !== "idle";
    });
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
    const known = this.liveSockets.get(identity);
    if (known && known.readyState === WebSocket.OPEN && isLive(known)) return known;
    const found = this.ctx.getWebSockets(identity).find(isLive);
    if (found) this.liveSockets.set(identity, found);
    else this.liveSockets.delete(identity);
    return found;
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

/** A socket of the room that the room is not closing (module-level: it runs on every frame, and a
 * closure made per call costs more than the check). */
function isLive(ws: WebSocket): boolean {
  const attachment = attachmentOf(ws);
  return attachment !== undefined && !attachment.closing;
}

function markClosing(ws: WebSocket, attachment: AudioAttachment): void {
  try {
    attach(ws, { ...attachment, closing: true });
  } catch {
    // Already closed: the runtime drops its attachment and will report no more events for it.
  }
}

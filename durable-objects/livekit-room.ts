// One Durable Object per LiveKit room: the shell around the rules in livekit-model.ts. Sockets
// are accepted for hibernation and tagged with a connection id (their only attachment); the
// room's state (sessions, parked offers, tracks, deadlines) is one JSON row in SQLite, written
// whenever a step changes it, so a session outlives both its socket and the object's eviction.
// Deadlines (a lone participant's wait, a closed socket's resume window) run on the alarm.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { SignalRequestSchema, SignalResponseSchema } from "../proto/gen/livekit_rtc_pb";
import { iceServersFor } from "../model/ice-servers";
import { LIVEKIT_MAX_SIGNAL_BYTES, NAME_PATTERN } from "../model/limits";
import type { LiveKitGrant } from "../model/livekit-grant";
import { AlarmClock } from "./alarm-clock";
import { closeSocket, HibernatingObject } from "./hibernating-object";
import { emptyRoom, nextDeadline, step, type RoomEffect, type RoomEvent, type RoomState } from "../model/livekit-model";
import {
  liveKitParticipant, liveKitRoom, liveKitRoomEvents, type LeaveReason, type OperatorParticipant, type OperatorRoom,
} from "../model/operator-events";
import { failure, success, type Result } from "../model/result";
import { INVALID_PAYLOAD, MESSAGE_TOO_BIG, UNSUPPORTED_DATA } from "../model/close-codes";
import { DisconnectReason } from "../proto/gen/livekit_models_pb";
import { OperatorOutbox } from "./operator-outbox";

/** Set by the Worker (worker/livekit.ts) to the verified token's grant, as JSON. The room trusts
 * it because only the Worker can reach the object, and the Worker overwrites any client value. */
export const LIVEKIT_GRANT_HEADER = "x-livekit-grant";

const SCHEMA = "CREATE TABLE IF NOT EXISTS room_state (id INTEGER PRIMARY KEY CHECK (id = 1), body TEXT NOT NULL)";

/** Per-socket state, versioned so a later shape can be told from this one after a deploy. */
interface LiveKitAttachment {
  v: 1;
  connection: string;
}

function connectionOf(ws: WebSocket): string | undefined {
  const attachment = ws.deserializeAttachment() as Partial<LiveKitAttachment> | null;
  return attachment?.v === 1 ? attachment.connection : undefined;
}

/** LiveKit's ids: a type prefix and 12 random characters (protocol/utils/guid). */
function newId(prefix: "PA_" | "RM_" | "TR_"): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  return prefix + Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => alphabet[b % alphabet.length]).join("");
}

export class LiveKitRoom extends HibernatingObject<Env> {
  private room: RoomState = emptyRoom();
  private readonly alarmClock = new AlarmClock(this.ctx.storage);
  /** The body last written to SQLite, so unchanged steps (pings, relayed candidates) write nothing. */
  private persisted: string | undefined;
  /** Operator events, written with the state they follow (operator-outbox.ts). */
  private readonly outbox = new OperatorOutbox(this.ctx.storage, this.env, "livekit");

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      // Rows a reset kept from being sent: send them now.
      if (this.outbox.pending) this.ctx.waitUntil(this.sendOutbox());
      ctx.storage.sql.exec(SCHEMA);
      const row = ctx.storage.sql.exec<{ body: string }>("SELECT body FROM room_state WHERE id = 1").toArray()[0];
      if (row) {
        // Fields added since a row was written take their empty defaults.
        this.room = { ...emptyRoom(), ...(JSON.parse(row.body) as RoomState) };
        this.persisted = row.body;
      }
      // Sockets can be gone without a close event (the object was restarted, e.g. by a deploy):
      // their sessions get the resume window like any other closed socket.
      for (const session of this.room.sessions) {
        if (session.connection && ctx.getWebSockets(session.connection).length === 0) {
          await this.apply({ type: "closed", connection: session.connection, now: Date.now() });
        }
      }
    });
  }

  protected async onConnect(ws: WebSocket, request: Request): Promise<Response | void> {
    const grant = grantFrom(request);
    if (!grant) return new Response("no grant from the Worker", { status: 400 });
    const query = new URL(request.url).searchParams;
    // The only await: everything after it runs as one step, with no other event in between.
    const iceServers = await iceServersFor(this.env, grant.identity);
    const connection = crypto.randomUUID();
    this.ctx.acceptWebSocket(ws, [connection]);
    ws.serializeAttachment({ v: 1, connection } satisfies LiveKitAttachment);
    const now = Date.now();
    await this.apply(query.get("reconnect") === "1"
      ? { type: "resume", connection, now, identity: grant.identity, sid: query.get("sid") ?? "", iceServers }
      : { type: "join", connection, now, grant, iceServers, clientProtocol: Number(query.get("client_protocol")) || 0,
        freshSid: newId("PA_"), freshRoomSid: newId("RM_") });
  }

  protected async onMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const connection = connectionOf(ws);
    if (!connection) return;
    if (typeof message === "string") return this.violation(ws, connection, UNSUPPORTED_DATA, "signalling frames are binary protobuf");
    if (message.byteLength > LIVEKIT_MAX_SIGNAL_BYTES) {
      return this.violation(ws, connection, MESSAGE_TOO_BIG, `frame of ${message.byteLength} bytes exceeds ${LIVEKIT_MAX_SIGNAL_BYTES}`);
    }
    let request;
    try {
      request = fromBinary(SignalRequestSchema, new Uint8Array(message));
    } catch {
      return this.violation(ws, connection, INVALID_PAYLOAD, "not a livekit.SignalRequest");
    }
    await this.apply({ type: "request", connection, now: Date.now(), request: request.message, freshTrackSid: newId("TR_") });
  }

  protected async onClose(ws: WebSocket): Promise<void> {
    const connection = connectionOf(ws);
    if (connection) await this.apply({ type: "closed", connection, now: Date.now() });
  }

  protected async onAlarm(): Promise<void> {
    this.alarmClock.fired();
    this.outbox.alarmFired();
    await this.sendOutbox();
    await this.apply({ type: "tick", now: Date.now() });
  }

  /** A protocol error ends the socket, not the session: the client may resume on a new one. */
  private async violation(ws: WebSocket, connection: string, code: number, reason: string): Promise<void> {
    await this.apply({ type: "closed", connection, now: Date.now() });
    closeSocket(ws, code, reason);
  }

  // ---- RoomService (worker/room-service.ts) ------------------------------------------------

  async operatorRoom(): Promise<Result<{ room: OperatorRoom; participants: OperatorParticipant[] }>> {
    if (this.room.sessions.length === 0) return failure(Code.NotFound, "requested room does not exist");
    return success({ room: liveKitRoom(this.room), participants: this.room.sessions.map((s) => liveKitParticipant(s)) });
  }

  /** An operator removes one participant, or everyone (DeleteRoom): each gets a leave. */
  async endByOperator(reason: "participant_removed" | "room_deleted", identity?: string): Promise<Result<void>> {
    if (this.room.sessions.length === 0) return failure(Code.NotFound, "requested room does not exist");
    if (identity !== undefined && !this.room.sessions.some((s) => s.identity === identity)) {
      return failure(Code.NotFound, "participant does not exist");
    }
    await this.apply({ type: "remove", now: Date.now(), ...(identity !== undefined ? { identity } : {}),
      reason: reason === "room_deleted" ? DisconnectReason.ROOM_DELETED : DisconnectReason.PARTICIPANT_REMOVED }, reason);
    return success(undefined);
  }

  /** One event through the rules: persist (with its operator events), act, and move the alarm to
   * the next deadline. */
  private async apply(event: RoomEvent, removed?: LeaveReason): Promise<void> {
    const prev = this.room;
    const { state, effects } = step(this.room, event);
    this.room = state;
    const events = liveKitRoomEvents(prev, state, event.now, removed);
    this.ctx.storage.transactionSync(() => {
      this.save();
      this.outbox.write(events);
    });
    for (const effect of effects) this.perform(effect);
    if (events.length) this.ctx.waitUntil(this.sendOutbox());
    await this.alarmClock.set(this.nextAlarm());
  }

  private nextAlarm(): number | null {
    const at = Math.min(nextDeadline(this.room) ?? Infinity, this.outbox.retryAt());
    return at === Infinity ? null : at;
  }

  private async sendOutbox(): Promise<void> {
    if (await this.outbox.sendOrWait({ room: this.room.name })) await this.alarmClock.set(this.nextAlarm());
  }

  private save(): void {
    const sql = this.ctx.storage.sql;
    if (this.room.sessions.length === 0) {
      if (this.persisted !== undefined) sql.exec("DELETE FROM room_state WHERE id = 1");
      this.persisted = undefined;
      return;
    }
    const body = JSON.stringify(this.room);
    if (body === this.persisted) return;
    sql.exec("INSERT OR REPLACE INTO room_state (id, body) VALUES (1, ?)", body);
    this.persisted = body;
  }

  private perform(effect: RoomEffect): void {
    const ws = this.ctx.getWebSockets(effect.connection)[0];
    if (!ws) return;
    if (effect.type === "close") {
      closeSocket(ws, effect.code, effect.reason);
      return;
    }
    try {
      ws.send(toBinary(SignalResponseSchema, create(SignalResponseSchema, { message: effect.message })));
    } catch (err) {
      // The socket is closing under us; its close event will reach the rules.
      console.warn("livekit signal send failed", { case: effect.message.case, error: String(err) });
    }
  }
}

function grantFrom(request: Request): LiveKitGrant | undefined {
  try {
    const grant = JSON.parse(request.headers.get(LIVEKIT_GRANT_HEADER) ?? "") as LiveKitGrant;
    const valid = (s: unknown) => typeof s === "string" && NAME_PATTERN.test(s);
    return valid(grant.identity) && valid(grant.room) ? grant : undefined;
  } catch {
    return undefined;
  }
}

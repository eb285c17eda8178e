// One Durable Object per identity that answers calls (a Viam host, a Voice client, a SIP
// account): who is online to answer and which calls wait for them, oldest first.
//
// A door waiting for a call holds a hibernatable WebSocket here, so a waiting answerer costs
// nothing: the object sleeps until a call arrives and pushes its id down the longest-waiting idle
// socket. The socket stays open while its answerer is busy with that call, so a host whose
// answerers are all busy still counts as online: its calls wait in line (the one write a call
// makes here) until an answerer frees up or opens a new stream, or the offer deadline passes.
import { Code } from "@connectrpc/connect";
import {
  ANSWERER_REOPEN_GRACE_MS, MAX_ANSWERERS_PER_HOST, MAX_AUDIO_ROOMS_PER_IDENTITY, MAX_PENDING_CALLS_PER_HOST, REQUEST_BURST, REQUESTS_PER_SECOND,
} from "../model/limits";
import type { Door } from "../model/call-model";
import { closeSocket, HibernatingObject, socketAttachments } from "./hibernating-object";
import { failure, success, type Failure, type Result } from "../model/result";
import { INVALID_PAYLOAD } from "../model/close-codes";
import type { HostPush, HostRequest } from "./spine-messages";
import { fullBucket, overRate, takeTokens, type TokenBucket } from "../model/token-bucket";

// WITHOUT ROWID: a text primary key is then the table itself, not a second index beside it, so
// each insert, update and delete writes one row where SQLite's billing would count two. `seq`
// orders the queue (calls enqueued in the same millisecond included); it only has to grow among
// the rows present, so MAX(seq) + 1 does. `answerers` holds only standing SIP accounts, which are
// online without a socket.
const SCHEMA = `
  CREATE TABLE IF NOT EXISTS answerers (
    id TEXT PRIMARY KEY,
    door TEXT NOT NULL,
    last_seen INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS waiting (
    call_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    deadline INTEGER NOT NULL
  ) WITHOUT ROWID;
`;

/** Apart from SCHEMA: an identity that only joins audio rooms needs no call queue, and an object
 * made before this table existed has the others already (hasTables). */
const AUDIO_SEATS_SCHEMA = "CREATE TABLE IF NOT EXISTS audio_rooms (room TEXT PRIMARY KEY) WITHOUT ROWID";

/** Per answerer socket. */
interface AnswererAttachment {
  v: 1;
  answerer: string;
  door: Door;
  /** Restricts the answerer to one specific call (Voice's `voice-call-id`). */
  only?: string;
  /** When it connected (ms, made unique per host: two answerers connecting in one millisecond
   * keep their order): the longest-waiting idle answerer gets the next call. */
  since: number;
  /** The call handed to it, and that call's offer deadline; until then it is idle. */
  call?: string;
  deadline?: number;
}

const attachments = socketAttachments<AnswererAttachment>(1);

export class HostObject extends HibernatingObject<Env> {
  /** The identity's request budget (worker/rate-limit.ts leases from it). In memory only: an
   * object is evicted after seconds of idleness, by when the bucket has refilled anyway (it is full
   * after REQUEST_BURST / REQUESTS_PER_SECOND = 2 s), so forgetting it never lets a flood through. */
  private requestBucket: TokenBucket | undefined;
  /** When the last answerer socket closed: a host between two streams (an answerer reopens its
   * stream after each call) is still online. In memory: lost only with an idle, evicted object. */
  private lastAnswererAt = 0;

  /** Whether the tables exist; undefined until looked up. Only this instance can create them, so
   * the answer holds until it does (an answerer socket checks on every connect). */
  private schemaReady: boolean | undefined;

  /** The object's tables, created on first use: the object of an identity that only places calls
   * or answers from idle sockets holds nothing, and creating a database costs a write. */
  private get sql(): SqlStorage {
    if (!this.schemaReady) {
      this.ctx.storage.sql.exec(SCHEMA);
      this.schemaReady = true;
    }
    return this.ctx.storage.sql;
  }

  // ---- A caller's socket, passing through: `?start=1&call=ID&deadline=MS&...` ----------------

  /**
   * The caller's socket to a new call, with the call in its upgrade (spine-messages START_HEADER).
   * Forwarded to the call's object, which this creates, so it is placed beside this host rather
   * than beside the caller; once it has started the call, the call is handed to an idle answerer or
   * queued, as `enqueue` does. The socket itself stays between the caller's door and the call's
   * object (the runtime relays it); this object is not asked again for the call.
   */
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.searchParams.get("start") !== "1") return super.fetch(request);
    const callId = url.searchParams.get("call");
    const deadline = Number(url.searchParams.get("deadline"));
    if (!callId || !Number.isFinite(deadline)) return Response.json({ code: Code.InvalidArgument, message: "call and deadline are required" }, { status: 400 });
    const refused = this.refuseCall(callId, Date.now());
    if (refused) return Response.json({ code: refused.code, message: refused.message }, { status: 409 });
    const started = await this.env.CALLS.getByName(callId).fetch(request);
    if (started.status === 101) this.queueCall(callId, deadline, Date.now());
    return started;
  }

  // ---- Answerer sockets: `?answerer=ID&door=DOOR[&only=CALL]` ------------------------------

  protected onConnect(ws: WebSocket, request: Request): Response | void {
    const url = new URL(request.url);
    const answerer = url.searchParams.get("answerer");
    const door = url.searchParams.get("door") as Door | null;
    if (!answerer || !door) return new Response("answerer and door are required", { status: 400 });
    const only = url.searchParams.get("only") ?? undefined;
    if (url.searchParams.get("admit") === "1") {
      // The door had no leased token for this identity: this object keeps its bucket, so the
      // socket's own request admits it (worker/rate-limit.ts admitFromLease).
      const refused = this.takeToken();
      if (refused) return refused;
    }
    const open = this.answerers();
    if (open.length >= MAX_ANSWERERS_PER_HOST) {
      return Response.json({ code: Code.ResourceExhausted,
        message: `${MAX_ANSWERERS_PER_HOST} answerer streams are already open for ${this.hostName()}` }, { status: 429 });
    }
    const since = Math.max(Date.now(), ...open.map(({ a }) => a.since + 1));
    this.ctx.acceptWebSocket(ws);
    attachments.set(ws, { v: 1, answerer, door, since, ...(only ? { only } : {}) });
    this.dispatch(Date.now());
  }

  protected onMessage(ws: WebSocket, message: string | ArrayBuffer): void {
    const me = attachments.get(ws);
    let request: HostRequest | undefined;
    try {
      request = JSON.parse(typeof message === "string" ? message : "") as HostRequest;
    } catch { /* refused below */ }
    if (!me || request?.op !== "free") {
      closeSocket(ws, INVALID_PAYLOAD, "expected {op: free}");
      return;
    }
    // The call was taken through another door or ended: this answerer is idle again.
    const { call: _call, ...idle } = me;
    attachments.set(ws, idle);
    this.dispatch(Date.now());
  }

  protected onClose(ws: WebSocket, code: number): void {
    const me = attachments.get(ws);
    if (!me) return;
    attachments.set(ws, { ...me, call: undefined, answerer: "" });
    this.lastAnswererAt = Date.now();
    // Handed a call its door never took (it went away, or took another host's call first): back in line.
    if (me.call && code !== 1000) this.requeue(me.call, me.deadline ?? Date.now());
  }

  // ---- RPC ---------------------------------------------------------------------------------

  /** Queues a call for this host: handed at once to an idle answerer, or kept in line while the
   * host is online and busy. Fails at once with not_found when nobody answers for the host. */
  async enqueue(callId: string, deadline: number): Promise<Result<void>> {
    const now = Date.now();
    const refused = this.refuseCall(callId, now);
    if (refused) return refused;
    this.queueCall(callId, deadline, now);
    return success(undefined);
  }

  /** Why a new call cannot be taken now: nobody answers for this host (not_found), or its line is
   * full with no idle answerer to take one more (resource_exhausted). */
  private refuseCall(callId: string, now: number): Failure | undefined {
    this.purge(now);
    if (!this.isOnline(now)) return failure(Code.NotFound, `host ${this.hostName()} is not online`);
    if (this.answerers().some(({ a }) => !a.call && (!a.only || a.only === callId))) return undefined;
    const pending = this.hasTables() ? this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM waiting").one().n : 0;
    if (pending >= MAX_PENDING_CALLS_PER_HOST) {
      return failure(Code.ResourceExhausted, `${MAX_PENDING_CALLS_PER_HOST} calls already wait for this host`);
    }
    return undefined;
  }

  /** Hands a call to the longest-waiting idle answerer, or puts it in line, and rings standing ones. */
  private queueCall(callId: string, deadline: number, now: number): void {
    if (!this.handOut(callId, deadline)) this.line(callId, deadline);
    this.ringStanding(callId, now);
  }

  /**
   * A standing answerer (a SIP account with a session, named by its account) is online without a
   * socket: every call queued here is pushed to it (SipAccount.offered) and stays in the queue, so
   * an answerer of another door may still take it first. It stands until `until` (a SIP account:
   * until it leaves) and calls `leave` when busy or gone; rung while it should not stand, it
   * leaves again (SipAccount.offered).
   */
  async stand(account: string, until: number): Promise<void> {
    this.sql.exec(
      "INSERT INTO answerers (id, door, last_seen) VALUES (?, 'sip', ?) ON CONFLICT (id) DO UPDATE SET door = 'sip', last_seen = excluded.last_seen",
      account, until);
  }

  /** The call was taken (by a standing answerer, or through another door): it leaves the queue. */
  async ack(callId: string): Promise<void> {
    if (this.hasTables()) this.sql.exec("DELETE FROM waiting WHERE call_id = ?", callId);
  }

  /** A standing answerer is busy or gone: it stops counting as online at once. */
  async leave(account: string): Promise<void> {
    this.sql.exec("DELETE FROM answerers WHERE id = ?", account);
  }

  /**
   * A seat for this identity in audio relay room `room` (worker/audio-relay.ts asks before each
   * join), at most MAX_AUDIO_ROOMS_PER_IDENTITY. Seats are not given back on leaving: only at the
   * cap are they checked against the rooms themselves (AudioRoom.holds), so a room reset or a lost
   * message can never leak one, and a join costs one write only for a room new to the identity.
   */
  async takeRoomSeat(room: string): Promise<Result<void>> {
    const sql = this.ctx.storage.sql;
    sql.exec(AUDIO_SEATS_SCHEMA);
    if (sql.exec("SELECT 1 FROM audio_rooms WHERE room = ?", room).toArray().length > 0) return success(undefined);
    const seated = () => sql.exec<{ room: string }>("SELECT room FROM audio_rooms").toArray().map((r) => r.room);
    if (seated().length >= MAX_AUDIO_ROOMS_PER_IDENTITY) {
      const identity = this.hostName();
      const rooms = seated();
      const held = await Promise.all(rooms.map((r) => this.env.AUDIO_ROOMS.getByName(r).holds(identity).catch(() => true)));
      rooms.forEach((r, i) => { if (!held[i]) sql.exec("DELETE FROM audio_rooms WHERE room = ?", r); });
      if (seated().length >= MAX_AUDIO_ROOMS_PER_IDENTITY) {
        return failure(Code.ResourceExhausted, `${identity} is already in ${MAX_AUDIO_ROOMS_PER_IDENTITY} audio rooms`);
      }
    }
    sql.exec("INSERT OR IGNORE INTO audio_rooms (room) VALUES (?)", room);
    return success(undefined);
  }

  /** Admits one request from this identity's bucket, or answers the refusal a door reads back. */
  private takeToken(): Response | undefined {
    const { granted, retryAfterMs } = this.leaseNow(1);
    if (granted > 0) return undefined;
    const { message } = overRate(this.hostName(), Math.max(1, retryAfterMs));
    return Response.json({ code: Code.ResourceExhausted, message }, { status: 429 });
  }

  /** Hands a Worker isolate up to `want` of this identity's request tokens (worker/rate-limit.ts). */
  async lease(want: number): Promise<{ granted: number; retryAfterMs: number }> {
    return this.leaseNow(want);
  }

  private leaseNow(want: number): { granted: number; retryAfterMs: number } {
    const now = Date.now();
    const taken = takeTokens(this.requestBucket ?? fullBucket(REQUEST_BURST, now), now, want, REQUESTS_PER_SECOND, REQUEST_BURST);
    this.requestBucket = taken.bucket;
    return { granted: taken.granted, retryAfterMs: taken.retryAfterMs };
  }

  async status(): Promise<{ online: boolean; answerers: number; idle: number; waiting: string[] }> {
    const now = Date.now();
    this.purge(now);
    const sockets = this.answerers();
    return {
      online: this.isOnline(now),
      answerers: sockets.length + this.standing(now).length,
      idle: sockets.filter(({ a }) => !a.call).length,
      waiting: this.waitingCalls(now).map((w) => w.callId),
    };
  }

  // ---- The queue ---------------------------------------------------------------------------

  /** Open answerer sockets with their attachments, longest-waiting first. */
  private answerers(): { ws: WebSocket; a: AnswererAttachment }[] {
    return this.ctx.getWebSockets()
      .flatMap((ws) => {
        const a = attachments.get(ws);
        return a && a.answerer && ws.readyState === WebSocket.OPEN ? [{ ws, a }] : [];
      })
      .sort((x, y) => x.a.since - y.a.since);
  }

  /** Pushes `callId` to the longest-waiting idle answerer that may take it; false when none. */
  private handOut(callId: string, deadline: number): boolean {
    for (const idle of this.answerers()) {
      if (idle.a.call || (idle.a.only && idle.a.only !== callId)) continue;
      try {
        idle.ws.send(JSON.stringify({ call: callId } satisfies HostPush));
      } catch {
        continue; // closing under us: its close handler runs next
      }
      attachments.set(idle.ws, { ...idle.a, call: callId, deadline });
      return true;
    }
    return false;
  }

  /** Hands queued calls to idle answerers, oldest call first. */
  private dispatch(now: number): void {
    if (!this.hasTables()) return;
    this.purge(now);
    for (const { callId, deadline } of this.waitingCalls(now)) {
      if (!this.handOut(callId, deadline)) continue;
      this.sql.exec("DELETE FROM waiting WHERE call_id = ?", callId);
    }
  }

  private requeue(callId: string, deadline: number): void {
    if (deadline <= Date.now() || this.handOut(callId, deadline)) return;
    this.line(callId, deadline);
  }

  /** Puts a call at the end of the line (the one row a call writes here). */
  private line(callId: string, deadline: number): void {
    this.sql.exec(`INSERT OR IGNORE INTO waiting (call_id, seq, deadline)
      VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM waiting), ?)`, callId, deadline);
  }

  private waitingCalls(now: number): { callId: string; deadline: number }[] {
    if (!this.hasTables()) return [];
    return this.sql.exec<{ call_id: string; deadline: number }>(
      "SELECT call_id, deadline FROM waiting WHERE deadline > ? ORDER BY seq", now)
      .toArray().map((r) => ({ callId: r.call_id, deadline: r.deadline }));
  }

  private ringStanding(callId: string, now: number): void {
    for (const id of this.standing(now)) {
      // Not awaited: the caller's start must not wait on (or fail with) the callee's account.
      this.ctx.waitUntil(this.env.SIP_ACCOUNTS.getByName(id).offered(callId).catch((err: unknown) => {
        console.error("ringing a standing SIP answerer failed", { callId, account: id, err: String(err) });
      }));
    }
  }

  private standing(now: number): string[] {
    if (!this.hasTables()) return [];
    return this.sql.exec<{ id: string }>("SELECT id FROM answerers WHERE last_seen > ?", now).toArray().map((r) => r.id);
  }

  private isOnline(now: number): boolean {
    return this.answerers().length > 0 || now - this.lastAnswererAt < ANSWERER_REOPEN_GRACE_MS || this.standing(now).length > 0;
  }

  private purge(now: number): void {
    if (!this.hasTables()) return;
    const sql = this.sql;
    sql.exec("DELETE FROM waiting WHERE deadline <= ?", now);
    sql.exec("DELETE FROM answerers WHERE last_seen <= ?", now);
  }

  /** Whether this or an earlier instance created the tables (reading sqlite_master writes nothing). */
  private hasTables(): boolean {
    this.schemaReady ??= this.ctx.storage.sql.exec<{ n: number }>(
      "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'waiting'").one().n > 0;
    return this.schemaReady;
  }

  private hostName(): string {
    return this.ctx.id.name ?? "(unnamed)";
  }
}

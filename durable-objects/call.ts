// One Durable Object per call: the shell around `step` (call-model.ts). Doors following the call
// hold a hibernatable WebSocket to it, one per side, and signals are pushed down it as they
// happen. Only what could be lost is written: the call's phase and history (one key, on the phase
// changes that only storage can keep: offered, answered, exchanged or ended) and the signals for a
// side that has no socket open (its backlog). What changes in between (the claim, candidates
// counted, a side's done) rides in a socket attachment, which survives hibernation, and is folded
// back in on every wake; after a reset, which drops the sockets with their attachments, the doors
// say it again as they reconnect (the callee's socket re-claims, a candidate carries its index).
import { INVALID_PAYLOAD, NORMAL_CLOSURE } from "../model/close-codes";
import { Code } from "@connectrpc/connect";
import {
  inboundClosed, SIDES, step, type CallEvent, type CallState, type Door,
  type IceCandidate, type Party, type Side, type Signal,
} from "../model/call-model";
import { CallClock } from "./call-clock";
import {
  callEvents, callParticipants, callRoom, callRoomOpen, type LeaveReason, type OperatorEvent, type OperatorParticipant,
  type OperatorRoom,
} from "../model/operator-events";
import { OperatorOutbox } from "./operator-outbox";
import { CallOutbox } from "./call-outbox";
import { closeSocket, HibernatingObject, socketAttachments } from "./hibernating-object";
import { failure, success, type Result } from "../model/result";
import { decodeStartCall, SPINE_CLOSE, START_HEADER, type CallAction, type CallRequest, type StartCall } from "./spine-messages";
import {
  backlogRefusal, changeOf, claimOf, countersOf, eventOf, joinTimes, markedFrom, mustWrite, newRecord, orSame, RECORD_KEY,
  refuseUpgrade, reloadFromSockets, sendPush, statusEntries, summarize,
  type CallAttachment, type CallChange, type CallRecord, type CallSummary, type HistoryEntry,
} from "./call-record";

export type { CallChange, CallSummary, HistoryEntry, StartCall };

/** Seqs an instance may hand out per millisecond of its life before a later one could reuse one. */
const SEQS_PER_MS = 1000;

const attachments = socketAttachments<CallAttachment>(1);

export class CallObject extends HibernatingObject<Env> {
  private record: CallRecord | undefined;
  /** Each side's counters as last written, to tell whether its closing socket takes unwritten
   * ones along. */
  private storedCounters: Record<Side, string> = { caller: "", callee: "" };
  /** Notifications to watchers go out one after another, so a watcher never hears of the end
   * before the answer that preceded it. */
  private notified: Promise<void> = Promise.resolve();
  private readonly clock = new CallClock(this.ctx.storage, (side) => this.socketOf(side));
  /** Operator events (model/operator-events.ts) of changes not written yet; persist() writes them
   * into the record, with the change. */
  private unwrittenEvents: OperatorEvent[] = [];
  private readonly outbox = new CallOutbox(this.env, () => this.record?.outbox ?? [],
    () => { if (this.record) this.persist(); }, () => this.record?.call.phase === "ended");
  /** Set while an operator's ending is applied: its events say why the sides left. */
  private removal: LeaveReason | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      this.load();
      // Events a reset kept from being sent: send them now.
      if (this.outbox.pending) this.ctx.waitUntil(this.sendOutbox());
      // Rows of events written beside the record, as this object did before its record held them.
      if (OperatorOutbox.holdsRows(ctx.storage)) {
        this.ctx.waitUntil(new OperatorOutbox(ctx.storage, env, "call").sendOrWait({ callId: this.record?.call.id }));
      }
    });
  }

  // ---- RPC, for doors without a socket (Viam CallUpdate, SIP accounts) -----------------------

  /** Creates the call and queues its offer at the host; fails with not_found when nobody answers for it. */
  async start(id: string, input: StartCall): Promise<Result<CallSummary>> {
    const started = this.begin(id, input);
    if (!started.ok) return started;
    // Started by RPC (a SIP account's call): this rings the host, where a caller's socket that came
    // through the host's object was rung by that object.
    const queued = await this.env.HOSTS.getByName(input.host).enqueue(id, input.deadline);
    if (queued.ok) return started;
    this.apply({ type: "reject", code: queued.code, message: queued.message, now: Date.now() });
    return queued;
  }

  /** The callee takes the call; returns the offer. Only one answerer ever gets it. */
  async claim(callee: Party): Promise<Result<CallSummary>> {
    const claimed = this.claimFor(callee);
    return claimed.ok ? success(summarize(claimed.value)) : claimed;
  }

  /** What `side` says to the call, for a door that follows it without a socket: the same actions,
   * checks and rules as over a socket. */
  async act(side: Side, identity: string, action: CallAction): Promise<Result<void>> {
    return this.asParty(side, identity, action);
  }

  async summary(): Promise<Result<CallSummary>> {
    return this.record ? success(summarize(this.record.call)) : failure(Code.NotFound, "no such call");
  }

  /**
   * A SIP account follows the call. It has no stream open to follow signals on, so the call tells
   * it (SipAccount.callChanged) of every status change from now on. Returns the call as it is now,
   * so a watcher that arrives after the answer misses nothing.
   */
  async watch(account: string): Promise<Result<CallChange>> {
    const record = this.record;
    if (!record) return failure(Code.NotFound, "no such call");
    if (!record.watchers.includes(account)) {
      record.watchers.push(account);
      this.persist();
    }
    return success(changeOf(record.call));
  }

  /** The call as an operator's room (RoomService): not_found once nobody is in it. */
  async operatorRoom(): Promise<Result<{ room: OperatorRoom; participants: OperatorParticipant[] }>> {
    const record = this.record;
    if (!record || !callRoomOpen(record.call)) return failure(Code.NotFound, "requested room does not exist");
    return success({ room: callRoom(record.call), participants: callParticipants(record.call, joinTimes(record)) });
  }

  /** An operator ends the call (RemoveParticipant of either side, DeleteRoom): both sides are told,
   * each on its own door, as for any end the server decides. */
  async endByOperator(reason: "participant_removed" | "room_deleted", identity?: string): Promise<Result<void>> {
    const record = this.record;
    if (!record || !callRoomOpen(record.call)) return failure(Code.NotFound, "requested room does not exist");
    if (identity !== undefined && !callParticipants(record.call, {}).some((p) => p.identity === identity)) {
      return failure(Code.NotFound, "participant does not exist");
    }
    this.removal = reason;
    let ended: Result<CallState>;
    try {
      ended = this.apply({ type: "reject", code: Code.Aborted, now: Date.now(),
        message: reason === "room_deleted" ? "the call was ended by an operator" : `${identity} was removed by an operator` });
    } finally {
      this.removal = undefined;
    }
    if (!ended.ok) return ended;
    // The operator's own change is in the directory (and on its way to the webhooks) by the time
    // the RPC returns, rather than a burst's coalescing later: a ListRooms right after a
    // DeleteRoom no longer lists the room.
    await this.sendOutbox();
    return success(undefined);
  }

  async history(): Promise<HistoryEntry[]> {
    return this.record?.history ?? [];
  }

  // ---- The sockets -------------------------------------------------------------------------

  /**
   * `?side=caller&identity=I&start=1`, the call in START_HEADER: the caller's socket, forwarded
   *   by the host's object, which rings the host once this creates the call.
   * `?side=callee&identity=I&claim=DOOR`: an answerer taking the call (refused if it cannot).
   * `?side=S&identity=I&cursor=N`: a door reconnecting; the backlog from seq N is sent again. A
   * reconnecting callee passes its `claim` too: an object reset before anything after the claim
   * was written has forgotten it, and takes it again.
   */
  protected onConnect(ws: WebSocket, request: Request): Response | void {
    const url = new URL(request.url);
    const side = url.searchParams.get("side");
    const identity = url.searchParams.get("identity") ?? "";
    if (side !== "caller" && side !== "callee") return refuseUpgrade(failure(Code.InvalidArgument, "side must be caller or callee"));
    const claimDoor = url.searchParams.get("claim") as Door | null;
    const starting = side === "caller" && url.searchParams.get("start") === "1";
    if (starting) return this.startFromUpgrade(ws, request, identity);
    const cursor = Number(url.searchParams.get("cursor") ?? 0) || 0;
    const reconnecting = url.searchParams.has("cursor");
    if (claimDoor && side === "callee" && !(reconnecting && this.record?.call.callee)) {
      const end = this.record?.call.end;
      // The claim was forgotten in a reset and the call ended before the callee came back: it is
      // told why, as it would have been with the claim on record.
      if (reconnecting && end) return refuseUpgrade(failure(end.code ?? Code.Canceled, end.message));
      const claim = { door: claimDoor, at: Date.now() };
      const claimed = this.claimFor({ identity, door: claimDoor }, () => this.adopt(ws, side, identity, cursor, claim));
      if (!claimed.ok) return refuseUpgrade(claimed);
      return;
    }
    const allowed = this.checkParty(side, identity);
    if (!allowed.ok) return refuseUpgrade(allowed);
    this.adopt(ws, side, identity, cursor, side === "callee" && this.record ? claimOf(this.record) : undefined);
  }

  protected async onMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const me = attachments.get(ws);
    if (!me || me.replaced) return;
    let request: CallRequest;
    try {
      request = JSON.parse(typeof message === "string" ? message : new TextDecoder().decode(message)) as CallRequest;
    } catch {
      closeSocket(ws, INVALID_PAYLOAD, "not a JSON request");
      return;
    }
    const result = await this.perform(me, request);
    sendPush(ws, result.ok ? { reply: request.id, ok: true } : { reply: request.id, ok: false, code: result.code, message: result.message });
  }

  protected onClose(ws: WebSocket, code: number): void {
    const me = attachments.get(ws);
    if (!me || me.replaced) return;
    attachments.set(ws, { ...me, replaced: true });
    const record = this.record;
    if (!record) return;
    const { side } = me;
    const unread = record.backlog[side].some((s) => s.seq >= record.read[side]);
    // 1000: the door finished with this side; anything else: its client (or the door) went away.
    this.apply({ type: "disconnect", side, clean: code === NORMAL_CLOSURE, unread, now: Date.now() });
    // Counters this socket carried that no write has taken yet leave with it unless written now.
    if (this.record && countersOf(this.record, side) !== this.storedCounters[side]) this.persist();
  }

  async alarm(): Promise<void> {
    this.clock.fired();
    this.outbox.alarmFired();
    await this.sendOutbox();
    if (this.record) this.apply({ type: "tick", now: Date.now() });
    await this.scheduleAlarm();
  }

  // ---- The shell ---------------------------------------------------------------------------

  private load(): void {
    const record = this.ctx.storage.kv.get<CallRecord>(RECORD_KEY);
    if (!record) {
      // A call object is created by its first write: until then it has no alarm to read back.
      this.clock.knownUnset();
      return;
    }
    this.storedCounters = { caller: countersOf(record, "caller"), callee: countersOf(record, "callee") };
    // Milliseconds since the epoch × 1000: above every seq an earlier instance handed out, unless
    // it sent over a thousand signals per millisecond of its life (a call carries a few hundred).
    record.nextSeq = Math.max(record.nextSeq, Date.now() * SEQS_PER_MS);
    const stored = record.call;
    const marks = this.ctx.getWebSockets().flatMap((ws) => {
      const mark = attachments.get(ws);
      return mark && !mark.replaced ? [mark] : [];
    });
    reloadFromSockets(record, marks, Date.now());
    // The events of changes the sockets carried and the row does not (see apply).
    this.unwrittenEvents.push(...callEvents(stored, record.call, Date.now(), joinTimes(record)));
    this.record = record;
  }

  /** The caller's socket, carrying its call (see START_HEADER): the call starts with the socket
   * adopted, so the offer's deadline is served by the caller's door from the first moment. The host's
   * object that forwarded the upgrade rings the host once this answers 101. */
  private startFromUpgrade(ws: WebSocket, request: Request, identity: string): Response | void {
    if (this.record) return refuseUpgrade(failure(Code.AlreadyExists, `call ${this.record.call.id} already exists`));
    const input = decodeStartCall(request.headers.get(START_HEADER));
    if (!input) return refuseUpgrade(failure(Code.InvalidArgument, `${START_HEADER} is not a call`));
    if (input.caller?.identity !== identity) return refuseUpgrade(failure(Code.PermissionDenied, "the call's caller is not this socket's"));
    this.adopt(ws, "caller", identity, 0);
    const started = this.begin(this.ctx.id.name ?? crypto.randomUUID(), input);
    if (started.ok) return;
    closeSocket(ws, SPINE_CLOSE.refused, started.message);
    return refuseUpgrade(started);
  }

  /** Creates the call; its host is rung by whoever asked (see `start` and `startFromUpgrade`). */
  private begin(id: string, input: StartCall): Result<CallSummary> {
    const started = this.apply({ type: "start", id, host: input.host, caller: input.caller, sdp: input.sdp,
      disableTrickle: input.disableTrickle, deadline: input.deadline, now: Date.now(),
      meta: input.meta });
    if (!started.ok) return started;
    // Started with the caller's socket: the caller follows the call.
    if (this.socketOf("caller")) this.record!.call = orSame(step(this.record!.call, { type: "connect", side: "caller", now: Date.now() }), this.record!.call);
    this.pushWakes();
    return success(summarize(started.value));
  }

  private claimFor(callee: Party, onClaimed?: () => void): Result<CallState> {
    const call = this.record?.call;
    if (call && call.host !== callee.identity) {
      return failure(Code.PermissionDenied, `call ${call.id} is not for ${callee.identity}`);
    }
    return this.apply({ type: "claim", callee, now: Date.now() }, onClaimed);
  }

  /** Takes `ws` as the socket of `side` (replacing an older one) and sends it the backlog from `cursor`.
   * `claim`: the callee's socket holds the call's claim (see CallAttachment). */
  private adopt(ws: WebSocket, side: Side, identity: string, cursor: number, claim?: CallAttachment["claim"]): void {
    for (const older of this.ctx.getWebSockets(side)) {
      const mark = attachments.get(older);
      if (!mark || mark.replaced) continue;
      attachments.set(older, { ...mark, replaced: true });
      closeSocket(older, SPINE_CLOSE.replaced, "replaced by a newer socket");
    }
    this.ctx.acceptWebSocket(ws, [side]);
    const record = this.record;
    if (record) record.nextSeq = Math.max(record.nextSeq, cursor);
    attachments.set(ws, { v: 1, side, identity, read: cursor, candidates: 0, doneAt: null, ...(claim ? { claim } : {}) });
    if (!record) return;
    for (const queued of record.backlog[side]) {
      if (queued.seq >= cursor) sendPush(ws, { seq: queued.seq, signal: queued.signal });
    }
    const sent = record.backlog[side].at(-1)?.seq;
    if (sent !== undefined && sent >= cursor) record.read[side] = Math.max(record.read[side], sent + 1);
    if (inboundClosed(record.call, side)) sendPush(ws, { end: true, over: record.call.phase === "ended" });
    // Presence is not written: the sockets themselves say it again after a wake (load).
    record.call = orSame(step(record.call, { type: "connect", side, now: Date.now() }), record.call);
    this.mark();
    this.pushWakes();
  }

  private async perform(me: CallAttachment, request: CallRequest): Promise<Result<unknown>> {
    const now = Date.now();
    const { side, identity } = me;
    switch (request.op) {
      case "answer": case "candidate": case "done": case "fail": case "hangup":
        return this.asParty(side, identity, request);
      case "tick": {
        // The door's clock reached a deadline the object gave it (`wake`): the rules decide.
        const ticked = this.apply({ type: "tick", now });
        return ticked.ok ? success(undefined) : ticked;
      }
      default:
        return failure(Code.InvalidArgument, "unknown request");
    }
  }

  private asParty(side: Side, identity: string, action: CallAction): Result<void> {
    if (action.op === "answer" && side !== "callee") return failure(Code.InvalidArgument, "only the callee answers");
    const allowed = this.checkParty(side, identity);
    if (!allowed.ok) return allowed;
    const done = this.apply(eventOf(side, action, Date.now()));
    return done.ok ? success(undefined) : done;
  }

  private checkParty(side: Side, identity: string): Result<void> {
    const call = this.record?.call;
    if (!call) return failure(Code.NotFound, "no such call");
    const party = side === "caller" ? call.caller : call.callee;
    if (!party) return failure(Code.FailedPrecondition, `call ${call.id} has not been taken by an answerer yet`);
    if (party.identity !== identity) return failure(Code.PermissionDenied, `${identity} is not the ${side} of call ${call.id}`);
    return success(undefined);
  }

  /** The open socket following `side`, if any. */
  private socketOf(side: Side): WebSocket | undefined {
    for (const ws of this.ctx.getWebSockets(side)) {
      const mark = attachments.get(ws);
      if (mark && !mark.replaced && ws.readyState === WebSocket.OPEN) return ws;
    }
    return undefined;
  }

  /**
   * Steps the call and performs the effects: each signal goes straight down its side's socket, or
   * into that side's backlog when none is open. The row is written when something only it can
   * keep changed; `beforeDelivery` runs after the transition is taken and before any signal goes
   * out (a socket being adopted with the transition that lets it in).
   */
  private apply(event: CallEvent, beforeDelivery?: () => void): Result<CallState> {
    const prev = this.record?.call;
    const transition = step(prev, event);
    if (!transition.ok) return transition;
    const { state, effects } = transition;
    const record: CallRecord = this.record ?? newRecord(state);
    const hasSocket = (side: Side) => !!this.socketOf(side);
    const refused = backlogRefusal(record, effects, hasSocket);
    if (refused) return refused;
    record.call = state;
    this.record = record;
    beforeDelivery?.();
    let backlogged = false;
    let statusChanged = false;
    for (const effect of effects) {
      if (effect.type === "deliver") {
        const seq = record.nextSeq++;
        const ws = this.socketOf(effect.to);
        if (ws) {
          sendPush(ws, { seq, signal: effect.signal });
          record.read[effect.to] = seq + 1;
        } else {
          record.backlog[effect.to].push({ seq, signal: effect.signal, at: event.now });
          backlogged = true;
        }
      } else if (effect.type === "expire") {
        this.record = undefined;
        this.ctx.storage.kv.delete(RECORD_KEY);
        return success(state);
      } else {
        statusChanged = true;
        record.history.push(...statusEntries([effect], event.now));
        if (effect.status === "caller_done" || effect.status === "callee_done") record.doneAt[effect.side!] = effect.at ?? event.now;
      }
    }
    for (const side of SIDES) {
      const ws = this.socketOf(side);
      if (ws && (!prev || !inboundClosed(prev, side) || (prev.phase !== "ended" && state.phase === "ended"))
        && inboundClosed(state, side)) sendPush(ws, { end: true, over: state.phase === "ended" });
    }
    // Operator events are one more effect of the change, written with it into the outbox: never one
    // for a change that was not written. A change that rides on a socket (the claim, a done) keeps
    // its events until the next write; if the object wakes first, load() derives them again from
    // what the sockets carry, so none is lost and none precedes its record.
    this.unwrittenEvents.push(...callEvents(prev, state, event.now, joinTimes(record), this.removal));
    if (mustWrite(event, prev, state, hasSocket, backlogged)) this.persist();
    else this.mark();
    this.pushWakes();
    if (statusChanged && record.watchers.length) this.notifyWatchers(state);
    return success(state);
  }

  /** Writes the record (one row, with the operator events of the changes it takes) and arms the
   * alarm for whatever it now waits on. */
  private persist(): void {
    const record = this.record!;
    const events = this.unwrittenEvents.splice(0);
    record.outbox = this.outbox.next(events);
    this.ctx.storage.kv.put(RECORD_KEY, record);
    this.storedCounters = { caller: countersOf(record, "caller"), callee: countersOf(record, "callee") };
    this.mark();
    void this.scheduleAlarm();
    if (events.length) this.outbox.sendSoon(this.ctx, { callId: record.call.id });
  }

  /** Sends the outbox's rows; on failure they wait for the alarm (scheduleAlarm). The alarm, if
   * brought forward for a retry, is left to fire early and re-arm for the call's own deadline:
   * moving it back would cost a write per change. */
  private async sendOutbox(): Promise<void> {
    await this.outbox.sendOrWait({ callId: this.record?.call.id });
  }

  /** Copies the counters each open socket's side may be the only keeper of into its attachment. */
  private mark(): void {
    const record = this.record;
    if (!record) return;
    for (const side of SIDES) {
      const ws = this.socketOf(side);
      if (!ws) continue;
      const mark = attachments.get(ws)!;
      const updated = markedFrom(mark, record);
      if (updated !== mark) attachments.set(ws, updated);
    }
  }

  private notifyWatchers(state: CallState): void {
    const change = changeOf(state);
    const accounts = [...this.record!.watchers];
    this.notified = this.notified.then(() => Promise.all(accounts.map(async (account) => {
      try {
        await this.env.SIP_ACCOUNTS.getByName(account).callChanged(change);
      } catch (err) {
        console.error("call watcher notification failed", { callId: state.id, account, err: String(err) });
      }
    })).then(() => undefined));
    this.ctx.waitUntil(this.notified);
  }

  /** Arms the alarm for whatever the call now waits on that no door serves (call-clock.ts). */
  private async scheduleAlarm(): Promise<void> {
    await this.clock.schedule(this.record?.call, this.outbox.retryAt());
  }

  private pushWakes(): void {
    this.clock.tellDoors(this.record?.call);
  }
}

export type { Door, Party, Side, Signal, IceCandidate };

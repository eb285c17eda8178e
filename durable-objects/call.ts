// One Durable Object per call: the shell around `step` (call-model.ts). It keeps the call's
// state, the signals queued for each side and the status history in SQLite, so an eviction
// between two signals loses nothing, and wakes the doors long-polling for new signals.
import { DurableObject } from "cloudflare:workers";
import { Code } from "@connectrpc/connect";
import type { Env } from "../worker/env";
import {
  CALL_MAX_AGE_MS, CALL_RETENTION_MS, MAX_QUEUED_SIGNALS, SIGNAL_POLL_WAIT_MS, SIGNAL_TTL_MS,
} from "../worker/limits";
import {
  inboundClosed, step, type CallEvent, type CallState, type CallStatus, type Door, type IceCandidate,
  type Party, type Side, type Signal,
} from "./call-model";
import { AlarmClock } from "./alarm-clock";
import { failure, success, type Result } from "./result";

// Shaped for SQLite's billing, which counts every row written in every table and index: no
// AUTOINCREMENT (it writes sqlite_sequence on each insert) and no secondary index (a queue holds at
// most MAX_QUEUED_SIGNALS rows a side, scanned in microseconds). A signal's seq must never be
// reused, or a door whose cursor is past it would skip it, so it is counted in call_state.next_seq
// (written with the state, one row) instead of taken from the table. History is never deleted
// from, so its rowid alone grows in order.
const SCHEMA = `
  CREATE TABLE IF NOT EXISTS call_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    body TEXT NOT NULL,
    next_seq INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS signals (
    seq INTEGER PRIMARY KEY,
    recipient TEXT NOT NULL,
    body TEXT NOT NULL,
    expires_at INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    status TEXT NOT NULL,
    side TEXT,
    detail TEXT
  );
  CREATE TABLE IF NOT EXISTS watchers (account TEXT PRIMARY KEY);
`;

export interface StartCall {
  host: string;
  caller: Party;
  sdp: string;
  disableTrickle: boolean;
  callerToken?: string;
  /** Absolute ms; the answer must arrive before it. */
  deadline: number;
  /** Door-specific data that travels with the call (a SIP call's headers). */
  meta?: Record<string, string>;
}

export interface QueuedSignal {
  seq: number;
  signal: Signal;
}

export interface PullResult {
  signals: QueuedSignal[];
  /** Nothing more will arrive for this side: its stream may end after these signals. */
  closed: boolean;
}

export interface HistoryEntry {
  at: number;
  status: CallStatus;
  side?: Side;
  detail?: string;
}

export interface CallSummary {
  id: string;
  host: string;
  caller: Party;
  callee?: Party;
  phase: CallState["phase"];
  offer: string;
  disableTrickle: boolean;
  offerDeadline: number;
  meta?: Record<string, string>;
}

/** What a watcher of the call (a SIP account) is told after each status change. */
export interface CallChange {
  id: string;
  host: string;
  caller: Party;
  callee?: Party;
  phase: CallState["phase"];
  offerDeadline: number;
  end?: { code: Code | null; message: string; by: Side | "server" };
  meta?: Record<string, string>;
}

/** Signals handed out per pull: enough for a whole trickle burst, small enough for one message. */
const PULL_BATCH = 64;

export class CallObject extends DurableObject<Env> {
  private call: CallState | undefined;
  /** Doors blocked in `pull`, woken when a signal for their side is queued. Lost on eviction,
   * which is fine: a door whose pull fails simply pulls again, and the signals are in SQLite. */
  private readonly waiters: Record<Side, Set<() => void>> = { caller: new Set(), callee: new Set() };
  /** Notifications to watchers go out one after another, so a watcher never hears of the end
   * before the answer that preceded it. */
  private notified: Promise<void> = Promise.resolve();
  /** The seq the next queued signal gets (persisted with the state). */
  private nextSeq = 1;
  private readonly alarmClock = new AlarmClock(this.ctx.storage);

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      ctx.storage.sql.exec(SCHEMA);
      const row = ctx.storage.sql.exec<{ body: string; next_seq: number }>(
        "SELECT body, next_seq FROM call_state WHERE id = 1").toArray()[0];
      this.call = row ? (JSON.parse(row.body) as CallState) : undefined;
      if (row) this.nextSeq = row.next_seq;
    });
  }

  /** Creates the call and queues its offer at the host; fails with not_found when nobody answers for it. */
  async start(id: string, input: StartCall): Promise<Result<CallSummary>> {
    const now = Date.now();
    const started = this.apply({ type: "start", id, host: input.host, caller: input.caller, sdp: input.sdp,
      disableTrickle: input.disableTrickle, deadline: input.deadline, callerToken: input.callerToken, now,
      meta: input.meta });
    if (!started.ok) return started;
    const queued = await this.env.HOSTS.getByName(input.host).enqueue(id, input.deadline);
    if (!queued.ok) {
      this.apply({ type: "reject", code: queued.code, message: queued.message, now: Date.now() });
      return queued;
    }
    return success(summarize(started.value));
  }

  /** The callee takes the call; returns the offer. Only one answerer ever gets it. */
  async claim(callee: Party): Promise<Result<CallSummary>> {
    if (this.call && this.call.host !== callee.identity) {
      return failure(Code.PermissionDenied, `call ${this.call.id} is not for ${callee.identity}`);
    }
    const claimed = this.apply({ type: "claim", callee, now: Date.now() });
    return claimed.ok ? success(summarize(claimed.value)) : claimed;
  }

  async answer(identity: string, sdp: string): Promise<Result<void>> {
    return this.asParty("callee", identity, () => this.apply({ type: "answer", sdp, now: Date.now() }));
  }

  /** `index` (optional): the candidates this side sent before this one; a repeated index is a
   * retried RPC and changes nothing (see CallEvent "candidate"). */
  async candidate(side: Side, identity: string, candidate: IceCandidate, index?: number): Promise<Result<void>> {
    return this.asParty(side, identity, () => this.apply({ type: "candidate", from: side, candidate, now: Date.now(), index }));
  }

  async done(side: Side, identity: string): Promise<Result<void>> {
    return this.asParty(side, identity, () => this.apply({ type: "done", from: side, now: Date.now() }));
  }

  /** A party reports that the call failed on its end (Viam error stages); the other is told. */
  async fail(side: Side, identity: string, code: Code, message: string): Promise<Result<void>> {
    return this.asParty(side, identity, () => this.apply({ type: "fail", from: side, code, message, now: Date.now() }));
  }

  async hangup(side: Side, identity: string): Promise<Result<void>> {
    return this.asParty(side, identity, () => this.apply({ type: "hangup", from: side, now: Date.now() }));
  }

  /**
   * Long-poll for the signals queued for `side`, starting at `cursor`. Passing a cursor
   * acknowledges (and deletes) everything before it, so a door that reconnects with its last
   * cursor gets each signal exactly once, in order.
   */
  async pull(side: Side, identity: string, cursor: number, waitMs = SIGNAL_POLL_WAIT_MS): Promise<Result<PullResult>> {
    const allowed = this.checkParty(side, identity);
    if (!allowed.ok) return allowed;
    const sql = this.ctx.storage.sql;
    sql.exec("DELETE FROM signals WHERE recipient = ? AND seq < ?", side, cursor);
    let batch = this.readQueue(side, cursor);
    if (batch.length === 0 && !inboundClosed(this.call!, side) && waitMs > 0) {
      await this.waitForSignal(side, Math.min(waitMs, SIGNAL_POLL_WAIT_MS));
      batch = this.readQueue(side, cursor);
    }
    const more = batch.length > PULL_BATCH;
    const signals = batch.slice(0, PULL_BATCH);
    const closed = !more && this.call !== undefined && inboundClosed(this.call, side);
    return success({ signals, closed });
  }

  async summary(): Promise<Result<CallSummary>> {
    return this.call ? success(summarize(this.call)) : failure(Code.NotFound, "no such call");
  }

  /**
   * A SIP account follows the call. It has no stream open to pull signals from, so the call
   * tells it (SipAccount.callChanged) of every status change from now on. Returns the call as it
   * is now, so a watcher that arrives after the answer misses nothing.
   */
  async watch(account: string): Promise<Result<CallChange>> {
    if (!this.call) return failure(Code.NotFound, "no such call");
    this.ctx.storage.sql.exec("INSERT OR IGNORE INTO watchers (account) VALUES (?)", account);
    return success(changeOf(this.call));
  }

  async history(): Promise<HistoryEntry[]> {
    // A call deleted after its retention period has no tables left to read.
    if (!this.call) return [];
    return this.ctx.storage.sql
      .exec<{ at: number; status: string; side: string | null; detail: string | null }>(
        "SELECT at, status, side, detail FROM history ORDER BY seq")
      .toArray()
      .map((r) => ({ at: r.at, status: r.status as CallStatus, ...(r.side ? { side: r.side as Side } : {}),
        ...(r.detail ? { detail: r.detail } : {}) }));
  }

  async alarm(): Promise<void> {
    this.alarmClock.fired();
    const call = this.call;
    if (!call) return;
    const now = Date.now();
    if (call.phase === "ended") {
      if (now >= call.end!.at + CALL_RETENTION_MS) {
        this.call = undefined;
        await this.ctx.storage.deleteAll();
        return;
      }
      this.ctx.storage.sql.exec("DELETE FROM signals WHERE expires_at <= ?", now);
    } else if ((call.phase === "offered" || call.phase === "claimed") && now >= call.offerDeadline) {
      this.apply({ type: "timeout", now });
    } else if (now >= call.createdAt + CALL_MAX_AGE_MS) {
      this.apply({ type: "reject", code: Code.DeadlineExceeded, message: "call exceeded its maximum age", now });
    } else {
      const expired = this.ctx.storage.sql.exec("DELETE FROM signals WHERE expires_at <= ? RETURNING seq", now).toArray().length;
      // Before the exchange completes, an uncollected signal means a party is gone: end the call
      // so the other side is told instead of waiting. After it, leftovers are just dropped.
      if (expired > 0 && call.phase !== "exchanged") this.apply({ type: "timeout", now });
    }
    await this.scheduleAlarm();
  }

  private asParty(side: Side, identity: string, act: () => Result<CallState>): Result<void> {
    const allowed = this.checkParty(side, identity);
    if (!allowed.ok) return allowed;
    const done = act();
    return done.ok ? success(undefined) : done;
  }

  private checkParty(side: Side, identity: string): Result<void> {
    const call = this.call;
    if (!call) return failure(Code.NotFound, "no such call");
    const party = side === "caller" ? call.caller : call.callee;
    if (!party) return failure(Code.FailedPrecondition, `call ${call.id} has not been taken by an answerer yet`);
    if (party.identity !== identity) return failure(Code.PermissionDenied, `${identity} is not the ${side} of call ${call.id}`);
    return success(undefined);
  }

  private readQueue(side: Side, cursor: number): QueuedSignal[] {
    return this.ctx.storage.sql
      .exec<{ seq: number; body: string }>(
        "SELECT seq, body FROM signals WHERE recipient = ? AND seq >= ? ORDER BY seq LIMIT ?", side, cursor, PULL_BATCH + 1)
      .toArray()
      .map((r) => ({ seq: r.seq, signal: JSON.parse(r.body) as Signal }));
  }

  private waitForSignal(side: Side, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => { clearTimeout(timer); this.waiters[side].delete(wake); resolve(); };
      const timer = setTimeout(wake, ms);
      this.waiters[side].add(wake);
    });
  }

  private apply(event: CallEvent): Result<CallState> {
    const transition = step(this.call, event);
    if (!transition.ok) return transition;
    const { state, effects } = transition;
    const sql = this.ctx.storage.sql;
    const woken = new Set<Side>();
    for (const effect of effects) {
      if (effect.type !== "deliver") continue;
      const queued = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM signals WHERE recipient = ?", effect.to).one().n;
      if (queued >= MAX_QUEUED_SIGNALS) {
        return failure(Code.ResourceExhausted, `${MAX_QUEUED_SIGNALS} signals already wait for the ${effect.to}`);
      }
    }
    let seq = this.nextSeq;
    this.ctx.storage.transactionSync(() => {
      for (const effect of effects) {
        if (effect.type === "deliver") {
          sql.exec("INSERT INTO signals (seq, recipient, body, expires_at) VALUES (?, ?, ?, ?)",
            seq++, effect.to, JSON.stringify(effect.signal), event.now + SIGNAL_TTL_MS);
          woken.add(effect.to);
        } else {
          sql.exec("INSERT INTO history (at, status, side, detail) VALUES (?, ?, ?, ?)",
            event.now, effect.status, effect.side ?? null, effect.detail ?? null);
        }
      }
      // An upsert writes one row; INSERT OR REPLACE deletes and inserts, two.
      sql.exec(`INSERT INTO call_state (id, body, next_seq) VALUES (1, ?, ?)
        ON CONFLICT (id) DO UPDATE SET body = excluded.body, next_seq = excluded.next_seq`, JSON.stringify(state), seq);
    });
    this.call = state;
    this.nextSeq = seq;
    if (effects.some((e) => e.type === "status")) this.notifyWatchers(state);
    // A phase change can close a side's stream even without a new signal for it.
    for (const side of ["caller", "callee"] as const) {
      if (woken.has(side) || inboundClosed(state, side)) for (const wake of [...this.waiters[side]]) wake();
    }
    void this.scheduleAlarm();
    return success(state);
  }

  private notifyWatchers(state: CallState): void {
    const accounts = this.ctx.storage.sql.exec<{ account: string }>("SELECT account FROM watchers").toArray();
    if (accounts.length === 0) return;
    const change = changeOf(state);
    this.notified = this.notified.then(() => Promise.all(accounts.map(async ({ account }) => {
      try {
        await this.env.SIP_ACCOUNTS.getByName(account).callChanged(change);
      } catch (err) {
        console.error("call watcher notification failed", { callId: state.id, account, err: String(err) });
      }
    })).then(() => undefined));
    this.ctx.waitUntil(this.notified);
  }

  /** One alarm covers every deadline: offer, signal TTL, maximum age and retention. */
  private async scheduleAlarm(): Promise<void> {
    const call = this.call;
    if (!call) return;
    const times: number[] = [];
    if (call.phase === "ended") times.push(call.end!.at + CALL_RETENTION_MS);
    else {
      times.push(call.createdAt + CALL_MAX_AGE_MS);
      if (call.phase === "offered" || call.phase === "claimed") times.push(call.offerDeadline);
    }
    const next = this.ctx.storage.sql
      .exec<{ t: number | null }>("SELECT MIN(expires_at) AS t FROM signals").one().t;
    if (next !== null) times.push(next);
    await this.alarmClock.set(Math.min(...times));
  }
}

function summarize(call: CallState): CallSummary {
  return { id: call.id, host: call.host, caller: call.caller, callee: call.callee, phase: call.phase,
    offer: call.offer, disableTrickle: call.disableTrickle, offerDeadline: call.offerDeadline,
    ...(call.meta ? { meta: call.meta } : {}) };
}

function changeOf(call: CallState): CallChange {
  return { id: call.id, host: call.host, caller: call.caller, phase: call.phase, offerDeadline: call.offerDeadline,
    ...(call.callee ? { callee: call.callee } : {}),
    ...(call.end ? { end: { code: call.end.code, message: call.end.message, by: call.end.by } } : {}),
    ...(call.meta ? { meta: call.meta } : {}) };
}

export type { Door, Party, Side, Signal, IceCandidate };

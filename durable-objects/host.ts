// One Durable Object per identity that answers calls (a Viam host, a Voice client, a SIP
// account): who is online to answer right now and which calls wait for them, oldest first.
import { DurableObject } from "cloudflare:workers";
import { Code } from "@connectrpc/connect";
import type { Env } from "../worker/env";
import {
  ANSWERER_LEASE_MS, MAX_PENDING_CALLS_PER_HOST, OFFER_ACK_TIMEOUT_MS, REQUEST_BURST, REQUESTS_PER_SECOND,
} from "../worker/limits";
import type { Door } from "./call-model";
import { AlarmClock } from "./alarm-clock";
import { failure, success, type Result } from "./result";
import { fullBucket, takeTokens, type TokenBucket } from "./token-bucket";

// WITHOUT ROWID: a text primary key is then the table itself, not a second index beside it, so
// each insert, update and delete writes one row where SQLite's billing would count two. `seq`
// orders the queue (calls enqueued in the same millisecond included); it only has to grow among
// the rows present, so MAX(seq) + 1 does.
const SCHEMA = `
  CREATE TABLE IF NOT EXISTS answerers (
    id TEXT PRIMARY KEY,
    door TEXT NOT NULL,
    last_seen INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS waiting (
    call_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    deadline INTEGER NOT NULL,
    offered_to TEXT,
    offered_at INTEGER
  ) WITHOUT ROWID;
`;

interface Waiter {
  /** Restricts the answerer to one specific call (Voice's `voice-call-id`). */
  only?: string;
  give: (callId: string | null) => void;
}

export class HostObject extends DurableObject<Env> {
  /** Answerers blocked in `next`, in arrival order: the longest-waiting answerer gets the next call. */
  private readonly waiters = new Map<string, Waiter>();
  /** The identity's request budget (worker/rate-limit.ts leases from it). In memory only: an
   * object is evicted after seconds of idleness, by when the bucket has refilled anyway (it is full
   * after REQUEST_BURST / REQUESTS_PER_SECOND = 2 s), so forgetting it never lets a flood through. */
  private requestBucket: TokenBucket | undefined;
  private readonly alarmClock = new AlarmClock(this.ctx.storage);

  private schemaReady = false;

  /** The object's tables, created on first use: the object of an identity that only places calls
   * holds nothing but its request bucket (in memory), and creating a database costs a write. */
  private get sql(): SqlStorage {
    if (!this.schemaReady) {
      this.ctx.storage.sql.exec(SCHEMA);
      this.schemaReady = true;
    }
    return this.ctx.storage.sql;
  }

  /** Queues a call for this host. Fails at once with not_found when no answerer is online. */
  async enqueue(callId: string, deadline: number): Promise<Result<void>> {
    const now = Date.now();
    this.purge(now);
    if (!this.isOnline(now)) return failure(Code.NotFound, `host ${this.hostName()} is not online`);
    const sql = this.sql;
    const pending = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM waiting").one().n;
    if (pending >= MAX_PENDING_CALLS_PER_HOST) {
      return failure(Code.ResourceExhausted, `${MAX_PENDING_CALLS_PER_HOST} calls already wait for this host`);
    }
    sql.exec(`INSERT OR IGNORE INTO waiting (call_id, seq, deadline)
      VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM waiting), ?)`, callId, deadline);
    this.dispatch(now);
    this.ringStanding(callId, now);
    await this.scheduleAlarm();
    return success(undefined);
  }

  /**
   * An answerer asks for its next call, waiting up to `waitMs`. Returns null when none came;
   * the answerer reports in again, which keeps it online. The call handed out must be
   * acknowledged with `ack` within OFFER_ACK_TIMEOUT_MS or it is offered to someone else.
   */
  async next(answererId: string, door: Door, waitMs: number, only?: string): Promise<string | null> {
    const now = Date.now();
    this.sql.exec(
      "INSERT INTO answerers (id, door, last_seen) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen",
      answererId, door, now);
    this.purge(now);
    const ready = this.takeFor(only, now, answererId);
    if (ready) {
      await this.scheduleAlarm();
      return ready;
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.waiters.delete(answererId); resolve(null); }, waitMs);
      this.waiters.set(answererId, {
        only,
        give: (callId) => { clearTimeout(timer); this.waiters.delete(answererId); resolve(callId); },
      });
    });
  }

  /**
   * A standing answerer (a SIP account with a session, named by its account) is online without
   * waiting in `next`: every call queued here is pushed to it (SipAccount.offered) and stays in
   * the queue, so an answerer of another door may still take it first. The account renews this
   * lease from its own alarm until `until`, and calls `leave` when busy or gone.
   */
  async stand(account: string, until: number): Promise<void> {
    // The lease check is `last_seen > now - ANSWERER_LEASE_MS`; this last_seen makes it end at `until`.
    this.sql.exec(
      "INSERT INTO answerers (id, door, last_seen) VALUES (?, 'sip', ?) ON CONFLICT (id) DO UPDATE SET door = 'sip', last_seen = excluded.last_seen",
      account, until - ANSWERER_LEASE_MS);
  }

  /** The answerer has taken the call (or found it gone): it leaves the queue for good. */
  async ack(callId: string): Promise<void> {
    this.sql.exec("DELETE FROM waiting WHERE call_id = ?", callId);
  }

  /** Puts back a call handed out but not taken (its answerer took another host's call). */
  async requeue(callId: string): Promise<void> {
    this.sql.exec("UPDATE waiting SET offered_to = NULL, offered_at = NULL WHERE call_id = ?", callId);
    this.dispatch(Date.now());
    await this.scheduleAlarm();
  }

  /** The answerer's stream closed: it stops counting as online at once. */
  async leave(answererId: string): Promise<void> {
    this.waiters.get(answererId)?.give(null);
    this.sql.exec("DELETE FROM answerers WHERE id = ?", answererId);
  }

  /** Hands a Worker isolate up to `want` of this identity's request tokens (worker/rate-limit.ts). */
  async lease(want: number): Promise<{ granted: number; retryAfterMs: number }> {
    const now = Date.now();
    const taken = takeTokens(this.requestBucket ?? fullBucket(REQUEST_BURST, now), now, want, REQUESTS_PER_SECOND, REQUEST_BURST);
    this.requestBucket = taken.bucket;
    return { granted: taken.granted, retryAfterMs: taken.retryAfterMs };
  }

  async status(): Promise<{ online: boolean; answerers: number; waiting: string[] }> {
    const now = Date.now();
    this.purge(now);
    const sql = this.sql;
    return {
      online: this.isOnline(now),
      answerers: sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM answerers").one().n,
      waiting: sql.exec<{ call_id: string }>("SELECT call_id FROM waiting ORDER BY seq").toArray().map((r) => r.call_id),
    };
  }

  async alarm(): Promise<void> {
    this.alarmClock.fired();
    const now = Date.now();
    // Offers handed to an answerer that never acknowledged them go back to the queue.
    this.sql.exec(
      "UPDATE waiting SET offered_to = NULL, offered_at = NULL WHERE offered_at IS NOT NULL AND offered_at <= ?",
      now - OFFER_ACK_TIMEOUT_MS);
    this.purge(now);
    this.dispatch(now);
    await this.scheduleAlarm();
  }

  private ringStanding(callId: string, now: number): void {
    const standing = this.sql.exec<{ id: string }>(
      "SELECT id FROM answerers WHERE door = 'sip' AND last_seen > ?", now - ANSWERER_LEASE_MS).toArray();
    for (const { id } of standing) {
      // Not awaited: the caller's start must not wait on (or fail with) the callee's account.
      this.ctx.waitUntil(this.env.SIP_ACCOUNTS.getByName(id).offered(callId).catch((err: unknown) => {
        console.error("ringing a standing SIP answerer failed", { callId, account: id, err: String(err) });
      }));
    }
  }

  private isOnline(now: number): boolean {
    if (this.waiters.size > 0) return true;
    return this.sql
      .exec<{ n: number }>("SELECT COUNT(*) AS n FROM answerers WHERE last_seen > ?", now - ANSWERER_LEASE_MS).one().n > 0;
  }

  private purge(now: number): void {
    const sql = this.sql;
    sql.exec("DELETE FROM waiting WHERE deadline <= ?", now);
    sql.exec("DELETE FROM answerers WHERE last_seen <= ?", now - ANSWERER_LEASE_MS);
  }

  /** Hands queued calls to blocked answerers, longest-waiting answerer first. */
  private dispatch(now: number): void {
    for (const [id, waiter] of [...this.waiters]) {
      const callId = this.takeFor(waiter.only, now, id);
      if (callId) waiter.give(callId);
    }
  }

  private takeFor(only: string | undefined, now: number, answererId: string): string | null {
    const sql = this.sql;
    const row = only
      ? sql.exec<{ call_id: string }>(
        "SELECT call_id FROM waiting WHERE call_id = ? AND offered_to IS NULL AND deadline > ?", only, now).toArray()[0]
      : sql.exec<{ call_id: string }>(
        "SELECT call_id FROM waiting WHERE offered_to IS NULL AND deadline > ? ORDER BY seq LIMIT 1", now).toArray()[0];
    if (!row) return null;
    sql.exec("UPDATE waiting SET offered_to = ?, offered_at = ? WHERE call_id = ?", answererId, now, row.call_id);
    return row.call_id;
  }

  private async scheduleAlarm(): Promise<void> {
    const sql = this.sql;
    const row = sql.exec<{ ack: number | null; deadline: number | null }>(
      "SELECT MIN(offered_at) AS ack, MIN(deadline) AS deadline FROM waiting").one();
    const times = [row.ack === null ? null : row.ack + OFFER_ACK_TIMEOUT_MS, row.deadline].filter((t): t is number => t !== null);
    if (times.length) await this.alarmClock.set(Math.min(...times));
  }

  private hostName(): string {
    return this.ctx.id.name ?? "(unnamed)";
  }
}

// One Durable Object per SIP account (seed 001): the shell around `step` (sip-model.ts). It keeps
// the account's credentials (PBKDF2 hash, salt, iterations), its session, current call, mute state
// and status history in SQLite, and performs what the rules ask for:
// - calls go through the shared call model (CallObject) with door "sip", so every other door sees
//   them; the account watches its calls (CallObject.watch) to hear of answers and hang-ups;
// - with a session and no call, the account stands as an answerer at its HostObject until it
//   leaves (no lease to renew, so a waiting account costs nothing), which pushes each call queued
//   for it here (`offered`);
// - ring timeout, auto-answer and the soft-hangup limit are this object's alarm;
// - the call's audio flows through the seed-003 relay, in a room named by the call id, where the
//   account holds a leg (sip-audio-leg.ts) to play WAV files.
import { DurableObject } from "cloudflare:workers";
import { Code } from "@connectrpc/connect";
import {
  MAX_SIP_QUEUED_AUDIO_BYTES, MAX_SIP_STATUS_HISTORY, SIGNAL_TTL_MS,
  SIP_AUDIO_PAIRING_WAIT_MS, SIP_RING_TIMEOUT_MS,
} from "../model/limits";
import { convertPcm, WavError, type PcmAudio } from "../codecs/wav-audio";
import type { CallChange } from "./call";
import { AlarmClock } from "./alarm-clock";
import { failure, success, type Result } from "../model/result";
import { SipAudioLeg, type AudioLegEvents } from "./sip-audio-leg";
import { performSipEffect, type SipEffectHost } from "./sip-account-effects";
import { hashPassword } from "./sip-credentials";
import { LOGIN_SCHEMA, SipLogin } from "./sip-login";
import {
  isAvailable, needsConnectedCall, newAccount, nextDeadline, step, type SipAccountState, type SipEffect,
  type SipEvent, type SipStatusEntry, type StatusName,
} from "../model/sip-model";

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS account_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    body TEXT NOT NULL,
    standing_renew_at INTEGER
  );
  CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    type TEXT NOT NULL,
    callee_id TEXT NOT NULL,
    transfer_call_id TEXT NOT NULL,
    headers TEXT NOT NULL
  );
`;

/** The ring timeout in force: SIP_RING_TIMEOUT_MS unless the environment shortens it (tests). It
 * stays below SIGNAL_TTL_MS for the reason given in model/limits.ts. */
export function ringTimeoutMs(env: Env): number {
  const configured = Number(env.SIP_RING_TIMEOUT_MS);
  return Number.isFinite(configured) && configured >= 1_000 && configured < SIGNAL_TTL_MS ? configured : SIP_RING_TIMEOUT_MS;
}

/** The `until` of a standing answerer at its HostObject: until the account leaves. */
const STANDS_UNTIL_IT_LEAVES = Number.MAX_SAFE_INTEGER;

export class SipAccount extends DurableObject<Env> {
  /** Undefined until the account is registered. */
  private state: SipAccountState | undefined;
  private login!: SipLogin;
  /** Whether this account stands as an answerer at its HostObject. */
  private standing = false;
  private readonly alarmClock = new AlarmClock(this.ctx.storage);
  /** Stand/leave calls go out in order, so the last one sent matches the newest state. */
  private standingSync: Promise<void> = Promise.resolve();
  private leg: SipAudioLeg | undefined;
  private legOpening: { callId: string; leg: Promise<SipAudioLeg | undefined> } | undefined;
  private readonly legEvents: AudioLegEvents = {
    accepted: (leg) => this.background("audio accepted", this.onAudioAccepted(leg)),
    declined: (leg) => this.background("audio declined", this.onAudioDeclined(leg)),
    dropped: (leg) => this.background("audio dropped", this.onAudioDropped(leg)),
  };

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      const sql = ctx.storage.sql;
      sql.exec(SCHEMA);
      sql.exec(LOGIN_SCHEMA);
      this.login = new SipLogin(sql);
      const row = sql.exec<{ body: string; standing_renew_at: number | null }>(
        "SELECT body, standing_renew_at FROM account_state WHERE id = 1").toArray()[0];
      this.state = row ? (JSON.parse(row.body) as SipAccountState) : undefined;
      // The column once held a lease's renewal time: such an account stands again at its next
      // alarm, for good.
      this.standing = row?.standing_renew_at === STANDS_UNTIL_IT_LEAVES;
    });
  }

  // ---- For the Sip door (worker/sip.ts); the door has authenticated the account.

  /** Creates the account, or changes its password, when `actor` has proven to be the account: a
   * new account needs a bearer token whose `sub` is its name (worker/sip.ts), so a SIP account and
   * the token identity of the same name are always one party and nobody squats a free name. */
  async register(account: string, password: string, actor: string | undefined): Promise<Result<void>> {
    const existed = this.login.registered;
    if (!existed && actor !== account) {
      return actor === undefined
        ? failure(Code.Unauthenticated, `creating account ${account} needs a bearer token whose sub is ${account}`)
        : failure(Code.PermissionDenied, `${actor} may not create account ${account}`);
    }
    if (existed && actor !== account) {
      return failure(Code.PermissionDenied, `account ${account} exists; registering it again needs its credentials`);
    }
    const hashed = await hashPassword(password);
    // Someone may have created the account while this password was being hashed.
    if (!existed && this.login.registered) {
      return failure(Code.PermissionDenied, `account ${account} exists; registering it again needs its credentials`);
    }
    const applied = this.apply({ type: "register", now: Date.now() }, this.state ?? newAccount(account));
    if (!applied.ok) return applied;
    this.login.store(hashed);
    await this.perform(applied.value);
    return success(undefined);
  }

  /** Checks a password from a client `address` (CF-Connecting-IP), within the throttle of failed
   * logins (sip-login.ts). */
  async authenticate(password: string, address: string): Promise<Result<void>> {
    return this.login.check(password, address);
  }

  async startSession(autoAnswerSeconds: number, audioBase: string): Promise<Result<void>> {
    return this.run({ type: "start_session", autoAnswerSeconds, audioBase, now: Date.now() });
  }

  async endSession(): Promise<Result<void>> {
    return this.run({ type: "end_session", now: Date.now() });
  }

  async startCall(callee: string, headers: Record<string, string>): Promise<Result<void>> {
    const now = Date.now();
    return this.run({ type: "dial", callId: crypto.randomUUID(), callee, headers, ringDeadline: now + ringTimeoutMs(this.env), now });
  }

  async endCall(hard: boolean): Promise<Result<void>> {
    return this.run({ type: "hangup", hard, now: Date.now() });
  }

  /** The far party is asked to call `target` (it must be a SIP account that can); then this
   * account leaves the call. */
  async transferCall(target: string, headers: Record<string, string>): Promise<Result<void>> {
    const begun = this.apply({ type: "transfer_begin", now: Date.now() });
    if (!begun.ok) return begun;
    const call = this.state!.call!;
    if (target === call.peer) {
      this.apply({ type: "transfer_abort", now: Date.now() });
      return failure(Code.InvalidArgument, `${target} is already the other party of this call`);
    }
    // Once the far party is re-called it leaves this call: a target nobody answers for would end
    // the call for both with nowhere to go. The call stays as it is instead.
    const reachable = await this.env.HOSTS.getByName(target).status().then((s) => s.online, () => false);
    if (!reachable) {
      this.apply({ type: "transfer_abort", now: Date.now() });
      return failure(Code.FailedPrecondition, `${target} is not online; the call stays as it is`);
    }
    let recalled: Result<void>;
    try {
      recalled = await this.env.SIP_ACCOUNTS.getByName(call.peer).recall(call.id, this.state!.account, target, headers);
    } catch (err) {
      console.error("transfer: re-calling the far party failed", { callId: call.id, peer: call.peer, err: String(err) });
      recalled = failure(Code.Unavailable, `${call.peer} could not be reached`);
    }
    if (!recalled.ok) {
      this.apply({ type: "transfer_abort", now: Date.now() });
      return failure(Code.FailedPrecondition, `TransferCall needs the other party to be a SIP account that can be re-called: ${recalled.message}`);
    }
    return this.run({ type: "transfer", target, headers, now: Date.now() });
  }

  async latestStatus(): Promise<Result<SipStatusEntry>> {
    const history = this.readHistory("SELECT at, type, callee_id, transfer_call_id, headers FROM history ORDER BY seq DESC LIMIT 1");
    return history.ok ? success(history.value[0]) : history;
  }

  async statusHistory(): Promise<Result<SipStatusEntry[]>> {
    return this.readHistory("SELECT at, type, callee_id, transfer_call_id, headers FROM history ORDER BY seq");
  }

  async mute(muted: boolean): Promise<Result<void>> {
    return this.run({ type: "mute", muted, now: Date.now() });
  }

  /** Plays decoded WAVs into the call, in order, after whatever is still queued. Returns once the
   * audio is queued; it then leaves at real-time pace. */
  async playWav(files: PcmAudio[]): Promise<Result<void>> {
    if (!this.state) return this.notRegistered();
    const wrong = needsConnectedCall(this.state, "PlayWavFiles");
    if (wrong) return wrong;
    const call = this.state.call!;
    const leg = this.leg?.callId === call.id
      ? this.leg
      : await this.openLeg(call.id, call.peer, call.direction === "outgoing", Date.now() + SIP_AUDIO_PAIRING_WAIT_MS);
    const params = await leg?.waitPaired(SIP_AUDIO_PAIRING_WAIT_MS);
    if (!leg || !params || this.leg !== leg) {
      return failure(Code.FailedPrecondition,
        `the call's audio is not connected: ${call.peer} did not take it in room ${call.id} within ${SIP_AUDIO_PAIRING_WAIT_MS / 1000} s`);
    }
    const converted: Uint8Array[] = [];
    for (const [i, file] of files.entries()) {
      try {
        converted.push(convertPcm(file, params));
      } catch (err) {
        if (err instanceof WavError) return failure(Code.InvalidArgument, `wav_files[${i}]: ${err.message}`);
        throw err;
      }
    }
    const adding = converted.reduce((n, b) => n + b.byteLength, 0);
    if (leg.pendingBytes + adding > MAX_SIP_QUEUED_AUDIO_BYTES) {
      return failure(Code.ResourceExhausted, `${leg.pendingBytes} bytes of audio still wait to play; ${adding} more would pass ${MAX_SIP_QUEUED_AUDIO_BYTES}`);
    }
    for (const audio of converted) leg.enqueue(audio);
    return success(undefined);
  }

  // ---- For the other objects.

  /** HostObject: a call was queued for this account's identity. */
  async offered(callId: string): Promise<void> {
    if (!isAvailable(this.state)) {
      // Rung while it should not stand: a leave of ours never reached the host. Sent again, in
      // order with our other stand and leave calls.
      await this.syncStanding(true);
      return;
    }
    const watched = await this.env.CALLS.getByName(callId).watch(this.state!.account);
    if (!watched.ok || watched.value.phase !== "offered") return;
    const call = watched.value;
    const rang = await this.run({ type: "ring", callId, caller: call.caller.identity, headers: call.meta ?? {},
      ringDeadline: call.offerDeadline, now: Date.now() });
    // Busy or without a session by now: the call stays queued for any other answerer.
    if (!rang.ok) console.log("sip account did not ring", { callId, reason: rang.message });
  }

  /** CallObject: a call this account watches changed. */
  async callChanged(change: CallChange): Promise<void> {
    if (this.state?.call?.id !== change.id) return;
    await this.followCall(change);
  }

  /** Another SIP account transfers the call it has with this one: leave it and call `target`. */
  async recall(oldCallId: string, by: string, target: string, headers: Record<string, string>): Promise<Result<void>> {
    if (!this.state) return failure(Code.FailedPrecondition, `${by}'s peer is not a registered SIP account`);
    const call = this.state.call;
    if (!call || call.id !== oldCallId || call.peer !== by) {
      return failure(Code.FailedPrecondition, `${this.state.account} has no SIP session in that call`);
    }
    const now = Date.now();
    return this.run({ type: "recalled", oldCallId, target, newCallId: crypto.randomUUID(), headers,
      ringDeadline: now + ringTimeoutMs(this.env), now });
  }

  async alarm(): Promise<void> {
    this.alarmClock.fired();
    if (this.state) await this.run({ type: "tick", now: Date.now() });
    await this.syncStanding();
    await this.scheduleAlarm();
  }

  // ---- The shell.

  /** Steps, persists and performs: the whole life of one event. */
  private async run(event: SipEvent): Promise<Result<void>> {
    if (!this.state) return this.notRegistered();
    const applied = this.apply(event);
    if (!applied.ok) return applied;
    await this.perform(applied.value);
    return success(undefined);
  }

  /** Steps and persists (state and new statuses in one transaction); returns the effects to perform. */
  private apply(event: SipEvent, from: SipAccountState | undefined = this.state): Result<SipEffect[]> {
    if (!from) return this.notRegistered();
    const transition = step(from, event);
    if (!transition.ok) return transition;
    const sql = this.ctx.storage.sql;
    this.ctx.storage.transactionSync(() => {
      this.persistState(transition.state);
      for (const effect of transition.effects) {
        if (effect.type !== "status") continue;
        const e = effect.entry;
        sql.exec("INSERT INTO history (at, type, callee_id, transfer_call_id, headers) VALUES (?, ?, ?, ?, ?)",
          e.at, e.type, e.calleeId, e.transferCallId, JSON.stringify(e.headers));
      }
      sql.exec("DELETE FROM history WHERE seq <= (SELECT MAX(seq) FROM history) - ?", MAX_SIP_STATUS_HISTORY);
    });
    this.state = transition.state;
    return success(transition.effects);
  }

  private persistState(state: SipAccountState): void {
    this.ctx.storage.sql.exec("INSERT OR REPLACE INTO account_state (id, body, standing_renew_at) VALUES (1, ?, ?)",
      JSON.stringify(state), this.standing ? STANDS_UNTIL_IT_LEAVES : null);
  }

  private async perform(effects: SipEffect[]): Promise<void> {
    for (const effect of effects) {
      try {
        await this.performOne(effect);
      } catch (err) {
        console.error("sip account effect failed", { account: this.state?.account, effect: effect.type, err: String(err) });
      }
    }
    await this.syncStanding();
    await this.scheduleAlarm();
  }

  private performOne(effect: SipEffect): Promise<void> {
    return performSipEffect(this.effectHost, this.state!.account, effect);
  }

  /** What sip-account-effects.ts may reach of this account to perform an effect. */
  private readonly effectHost: SipEffectHost = {
    env: this.env,
    run: (event) => this.run(event),
    followCall: (change) => this.followCall(change),
    openLeg: (callId, peer, dials, dialUntil) => this.openLeg(callId, peer, dials, dialUntil),
    leg: () => this.leg,
    dropLeg: () => { this.leg = undefined; },
    background: (what, work) => this.background(what, work),
  };

  /** Brings the account in line with what the call model says about its current call. */
  private async followCall(change: CallChange): Promise<void> {
    if (change.phase === "answered" || change.phase === "exchanged") {
      await this.run({ type: "connected", callId: change.id, now: Date.now() });
    } else if (change.phase === "ended") {
      await this.run({ type: "ended", callId: change.id, failed: (change.end?.code ?? null) !== null,
        reason: change.end?.message ?? "the call ended", now: Date.now() });
    }
  }

  private async openLeg(callId: string, peer: string, dials: boolean, dialUntil: number): Promise<SipAudioLeg | undefined> {
    if (this.legOpening?.callId === callId) return this.legOpening.leg;
    this.leg?.close();
    this.leg = undefined;
    const opening = (async () => {
      try {
        const leg = await SipAudioLeg.open(this.env, { callId, identity: this.state!.account, peer, dials, dialUntil }, this.legEvents);
        // The call may have ended while the socket was opening.
        if (this.state?.call?.id !== callId) {
          leg.close();
          return undefined;
        }
        leg.setMuted(this.state.call.muted);
        this.leg = leg;
        return leg;
      } catch (err) {
        console.error("sip account could not open its audio leg", { callId, err: String(err) });
        return undefined;
      } finally {
        if (this.legOpening?.callId === callId) this.legOpening = undefined;
      }
    })();
    this.legOpening = { callId, leg: opening };
    return opening;
  }

  /** The callee took the call's audio in the relay: for a SIP caller that is the callee's answer. */
  private async onAudioAccepted(leg: SipAudioLeg): Promise<void> {
    const call = this.state?.call;
    if (!call || call.id !== leg.callId || call.direction !== "outgoing" || call.phase !== "ringing") return;
    const stub = this.env.CALLS.getByName(call.id);
    // A callee that answered through its own door already claimed the call; then this is a no-op.
    const claimed = await stub.claim({ identity: call.peer, door: "audio" });
    if (!claimed.ok) return;
    await this.env.HOSTS.getByName(call.peer).ack(call.id);
    const answered = await stub.act("callee", call.peer, { op: "answer", sdp: "" });
    if (!answered.ok) return;
    await stub.act("callee", call.peer, { op: "done" });
    await this.run({ type: "connected", callId: call.id, now: Date.now() });
  }

  private async onAudioDeclined(leg: SipAudioLeg): Promise<void> {
    const call = this.state?.call;
    if (!call || call.id !== leg.callId || call.phase !== "ringing") return;
    const reason = `${call.peer} declined the call`;
    await this.env.CALLS.getByName(call.id).act(call.direction === "outgoing" ? "caller" : "callee", this.state!.account,
      { op: "fail", code: Code.Unavailable, message: reason });
    await this.run({ type: "ended", callId: call.id, failed: true, reason, now: Date.now() });
  }

  /** The far party left the call's audio (drop, or its socket closed): for a party whose only
   * door is the relay, that is its hang-up. */
  private async onAudioDropped(leg: SipAudioLeg): Promise<void> {
    if (this.leg === leg) this.leg = undefined;
    const call = this.state?.call;
    if (!call || call.id !== leg.callId || call.phase !== "connected") return;
    const farSide = call.direction === "outgoing" ? "callee" : "caller";
    await this.env.CALLS.getByName(call.id).act(farSide, call.peer, { op: "hangup" });
    await this.run({ type: "ended", callId: call.id, failed: false, reason: `${call.peer} left the call's audio`, now: Date.now() });
  }

  /** Stands at the HostObject while available, leaves it otherwise. Standing has no lease to
   * renew: an account waiting for calls wakes for nothing (no alarm, no request), as a Voice or
   * Viam stream waiting on a hibernated socket does. `recheck`: leave again even if it believes
   * it left (the host rang it, so that leave never arrived). */
  private syncStanding(recheck = false): Promise<void> {
    this.standingSync = this.standingSync.then(async () => {
      const state = this.state;
      if (!state) return;
      const host = this.env.HOSTS.getByName(state.account);
      if (isAvailable(state)) {
        if (this.standing) return;
        await host.stand(state.account, STANDS_UNTIL_IT_LEAVES);
        this.standing = true;
      } else {
        if (!this.standing && !recheck) return;
        await host.leave(state.account);
        this.standing = false;
      }
      this.persistState(this.state!);
    }).catch((err: unknown) => {
      console.error("sip account could not update its answerer lease", { account: this.state?.account, err: String(err) });
    });
    return this.standingSync;
  }

  /** One alarm covers ring timeout, auto-answer and the soft-hangup limit. */
  private async scheduleAlarm(): Promise<void> {
    const at = this.state ? nextDeadline(this.state) : undefined;
    await this.alarmClock.set(at ?? null);
  }

  private readHistory(query: string): Result<SipStatusEntry[]> {
    if (!this.state) return this.notRegistered();
    const rows = this.ctx.storage.sql
      .exec<{ at: number; type: string; callee_id: string; transfer_call_id: string; headers: string }>(query)
      .toArray();
    return success(rows.map((r) => ({ at: r.at, type: r.type as StatusName, calleeId: r.callee_id,
      transferCallId: r.transfer_call_id, headers: JSON.parse(r.headers) as Record<string, string> })));
  }

  private notRegistered(): Result<never> {
    const name = this.ctx.id.name;
    return failure(Code.FailedPrecondition, `${name ? `account ${name}` : "this account"} is not registered (RegisterAccount first)`);
  }

  private background(what: string, work: Promise<unknown>): void {
    this.ctx.waitUntil(work.catch((err: unknown) => {
      console.error(`sip account: ${what} failed`, { account: this.state?.account, err: String(err) });
    }));
  }
}

// How a door follows a call: long-poll the call object for one side's signals, and ask the
// host objects for the next call to answer. Shared by every door so each stays a translation.
import { Code, ConnectError } from "@connectrpc/connect";
import type { CallObject, CallSummary, PullResult } from "../durable-objects/call";
import type { Door, Side, Signal } from "../durable-objects/call-model";
import type { Result } from "../durable-objects/result";
import { publicError } from "./connect-errors";
import type { Env } from "./env";

/** Transient failures of a call-object RPC (eviction, restart) retried before giving up. */
const PULL_RETRIES = 5;

export function callStub(env: Env, callId: string): DurableObjectStub<CallObject> {
  return env.CALLS.getByName(callId);
}

/** Unwraps a Durable Object result, turning a failure into the ConnectError the client sees. */
export function orThrow<T>(result: Result<T>): T {
  if (!result.ok) throw new ConnectError(result.message, result.code);
  return result.value;
}

/**
 * Yields the signals queued for `side` of a call, in order, each exactly once, until the call
 * has nothing more for that side. Survives the call object being evicted mid-poll: the next
 * poll resumes from the cursor and the object reloads its queue from SQLite.
 */
export async function* followCall(env: Env, callId: string, side: Side, identity: string,
  abort?: AbortSignal): AsyncGenerator<Signal> {
  let cursor = 0;
  let failures = 0;
  while (true) {
    abort?.throwIfAborted();
    let pulled: Result<PullResult>;
    try {
      // A fresh stub per poll: a stub whose object was reset stays broken.
      pulled = await untilAborted<Result<PullResult>>(callStub(env, callId).pull(side, identity, cursor), abort);
    } catch (err) {
      if (abort?.aborted || ++failures > PULL_RETRIES) throw err;
      await new Promise((r) => setTimeout(r, 20 * failures));
      continue;
    }
    failures = 0;
    const { signals, closed } = orThrow(pulled);
    for (const queued of signals) {
      cursor = queued.seq + 1;
      yield queued.signal;
    }
    if (closed) return;
  }
}

function untilAborted<T>(work: Promise<T>, abort?: AbortSignal): Promise<T> {
  if (!abort) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abort.reason);
    abort.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => abort.removeEventListener("abort", onAbort));
  });
}

/**
 * Waits up to `waitMs` for the next call offered to any of `hosts` and claims it for
 * `identity`, returning the claimed call. Returns null when none came (the caller then
 * heartbeats and asks again).
 * A call taken from one host's queue while another host's call won the race goes back at
 * once; a claimed call is acknowledged so no other answerer gets it.
 */
export async function nextCall(env: Env, hosts: string[], answererId: string, door: Door, waitMs: number,
  only?: string): Promise<CallSummary | null> {
  const host = (i: number) => env.HOSTS.getByName(hosts[i]);
  const offers = hosts.map((_, i) => offerFrom(env, hosts[i], answererId, door, waitMs, only));
  const first = await Promise.race(offers.map((p, i) => p.then((callId) => ({ i, callId }))));
  // Release the other hosts' waits; any call they handed out meanwhile goes back to its queue.
  await Promise.all(offers.map(async (offer, i) => {
    if (i === first.i) return;
    await retried(() => host(i).leave(answererId));
    const late = await offer.catch(() => null);
    if (late) await retried(() => host(i).requeue(late));
  }));
  if (!first.callId) return null;
  const callId = first.callId;
  const claimed = await callStub(env, callId).claim({ identity: hosts[first.i], door });
  // The call leaves the queue; busy with it, the answerer is no longer online for new ones (hosts
  // that take calls in parallel keep a second stream waiting, as Viam's do). Independent: at once.
  await Promise.all([retried(() => host(first.i).ack(callId)), retried(() => host(first.i).leave(answererId))]);
  return claimed.ok ? claimed.value : null;
}

/**
 * One host's `next`, surviving the host object being reset mid-wait (a deploy, an eviction, a
 * crash): the wait is asked again of the fresh instance, which re-registers the answerer. Without
 * this, a waiting answerer's stream failed with `internal` and its host stayed "online" (its lease
 * is in SQLite) with nobody waiting, so the next caller got deadline_exceeded instead of an answer.
 */
async function offerFrom(env: Env, host: string, answererId: string, door: Door, waitMs: number,
  only?: string): Promise<string | null> {
  const until = Date.now() + waitMs;
  return retried(() => env.HOSTS.getByName(host).next(answererId, door, Math.max(0, until - Date.now()), only));
}

/**
 * Runs an RPC on a call object, retrying with a fresh stub when the object was reset under it (a
 * stub whose object was reset stays broken). Only for RPCs a repeat cannot apply twice: answer,
 * done, fail, summary, and candidates with their index (CallEvent "candidate").
 */
export function onCall<T extends PromiseLike<unknown>>(env: Env, callId: string,
  rpc: (call: DurableObjectStub<CallObject>) => T): Promise<Awaited<T>> {
  return retried(async (): Promise<Awaited<T>> => await rpc(callStub(env, callId)));
}

/** Runs an idempotent object RPC, retrying transient failures (object reset) with a fresh stub. */
async function retried<T>(rpc: () => Promise<T>): Promise<T> {
  for (let failures = 0; ; ) {
    try {
      return await rpc();
    } catch (err) {
      if (++failures > PULL_RETRIES) throw err;
      await new Promise((r) => setTimeout(r, 20 * failures));
    }
  }
}

/** Ends this side of a call when its stream goes away before the call finished. */
export async function abandon(env: Env, callId: string, side: Side, identity: string): Promise<void> {
  try {
    await onCall(env, callId, (call) => call.fail(side, identity, Code.Unavailable, `the ${side} disconnected`));
  } catch (err) {
    console.error("abandon failed", { callId, side, err: String(err) });
  }
}

/**
 * Serves the answering side of one call on a bidi stream: `consume` applies the client's
 * messages to the call (resolving once the client has nothing more to send) while the call's
 * signals for the callee are translated by `emit` and yielded. Ends when the exchange is
 * complete or the call has ended. A failure of either direction ends the call for the other
 * party too, so a caller is never left waiting on a broken answerer.
 */
export async function* serveCallee<Out>(opts: {
  env: Env;
  callId: string;
  identity: string;
  consume: () => Promise<void>;
  emit: (signal: Signal) => Out | null | Promise<Out | null>;
}): AsyncGenerator<Out> {
  const { env, callId, identity } = opts;
  const stop = new AbortController();
  const consumed = opts.consume().catch((err: unknown) => { stop.abort(err); throw err; });
  consumed.catch(() => undefined);
  let settled = false;
  try {
    for await (const signal of followCall(env, callId, "callee", identity, stop.signal)) {
      const out = await opts.emit(signal);
      if (out !== null) yield out;
      if (signal.kind === "error") { settled = true; return; }
    }
    // The caller has nothing more to send. Unless the call is over, wait for the client to finish.
    const summary = orThrow(await onCall(env, callId, (call) => call.summary()));
    if (summary.phase !== "ended") await consumed;
    settled = true;
  } catch (err) {
    const e = publicError(err);
    if (!settled) await onCall(env, callId, (call) => call.fail("callee", identity, e.code, e.rawMessage));
    settled = true;
    throw e;
  } finally {
    if (!settled) await abandon(env, callId, "callee", identity);
  }
}

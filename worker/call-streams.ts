// How a door follows a call and waits for one, over the spine's sockets (object-sockets.ts).
// Shared by every door so each stays a translation.
import { NORMAL_CLOSURE } from "../model/close-codes";
import { Code, ConnectError } from "@connectrpc/connect";
import type { CallObject } from "../durable-objects/call";
import type { Door, Signal } from "../model/call-model";
import type { Result } from "../model/result";
import { SPINE_CLOSE } from "../durable-objects/spine-messages";
import { publicError } from "./connect-errors";
import { Answerer, CallSocket } from "./object-sockets";

export { CallSocket, SPINE_CLOSE };

export function callStub(env: Env, callId: string): DurableObjectStub<CallObject> {
  return env.CALLS.getByName(callId);
}

/** Unwraps a Durable Object result, turning a failure into the ConnectError the client sees. */
export function orThrow<T>(result: Result<T>): T {
  if (!result.ok) throw new ConnectError(result.message, result.code);
  return result.value;
}

/** A claimed call: its id, the host it is for, and the callee's socket to it. */
export interface TakenCall {
  callId: string;
  host: string;
  socket: CallSocket;
  /** Leaves the call: closes the callee's socket with `code` (1000: this side finished;
   * SPINE_CLOSE.abandoned: its client went away, which ends the call for the caller at once) and
   * the answerer's host socket, which kept the host counting it busy. */
  release: (code: number) => void;
}

/**
 * Waits for the next call offered to any of `hosts` and claims it. Every `heartbeatMs` without one,
 * `onIdle` runs (a Viam Answer stream sends a heartbeat stage); a truthy return stops the wait
 * (null). `abort` (the client went away) stops it too. The host objects sleep meanwhile.
 */
export async function waitForCall(env: Env, hosts: string[], door: Door, opts: {
  only?: string; abort: AbortSignal; heartbeatMs: number; onIdle?: () => Promise<boolean> | boolean;
  /** The host objects admit the request against the identity's rate (worker/rate-limit.ts). */
  admit?: boolean;
}): Promise<TakenCall | null> {
  const answerer = await Answerer.open(env, hosts, door, opts.only, opts.admit);
  let taken: Awaited<ReturnType<Answerer["take"]>> = null;
  try {
    while (!taken && !opts.abort.aborted) {
      taken = await answerer.take(AbortSignal.any([opts.abort, AbortSignal.timeout(opts.heartbeatMs)]));
      if (!taken && !opts.abort.aborted && (await opts.onIdle?.())) break;
    }
  } catch (err) {
    answerer.close();
    throw err;
  }
  if (!taken) {
    answerer.close();
    return null;
  }
  return { ...taken, release: (code) => {
    taken.socket.close(code, code === NORMAL_CLOSURE ? "finished" : "callee went away");
    answerer.close();
  } };
}

/**
 * Serves the answering side of one call on a bidi stream: `consume` applies the client's
 * messages to the call (resolving once the client has nothing more to send) while the call's
 * signals for the callee are translated by `emit` and yielded. Ends when the exchange is
 * complete or the call has ended. A failure of either direction ends the call for the other
 * party too, so a caller is never left waiting on a broken answerer.
 */
export async function* serveCallee<Out>(opts: {
  call: TakenCall;
  consume: (socket: CallSocket) => Promise<void>;
  emit: (signal: Signal) => Out | null | Promise<Out | null>;
}): AsyncGenerator<Out> {
  const { socket } = opts.call;
  /** The call was ended from here (or the exchange finished): nothing more to tell the object. */
  let settled = false;
  let consumedFailure: unknown;
  let consumedDone = false;
  const failCall = async (err: unknown) => {
    if (settled) return;
    settled = true;
    const e = publicError(err);
    await socket.request({ op: "fail", code: e.code, message: e.rawMessage }).catch(() => undefined);
  };
  const consumed = opts.consume(socket).then(() => { consumedDone = true; }, async (err: unknown) => {
    // The client's stream broke (it went away): connect-es reports a request body that stops
    // mid-stream as a plain error or as `internal`/`canceled`, never as a code this door throws for
    // bad input. The object hears an abandoned socket and tells the caller `unavailable`.
    const gone = !(err instanceof ConnectError) || err.code === Code.Internal || err.code === Code.Canceled;
    if (gone) {
      consumedFailure = new ConnectError("the callee went away", Code.Canceled);
      abandon(socket);
      return;
    }
    consumedFailure = err;
    // The client's side failed: the call fails for the caller too, and the object ends the stream.
    await failCall(err);
  });
  try {
    let ended = false;
    for await (const signal of socket.signals()) {
      const out = await opts.emit(signal);
      if (out !== null) yield out;
      if (signal.kind === "error") { ended = true; break; }
    }
    // The caller has nothing more to send. Unless the call is over, wait for the client to finish.
    if (!ended && !socket.callEnded && !consumedDone && !consumedFailure) await consumed;
    if (consumedFailure) throw consumedFailure;
    settled = true;
  } catch (err) {
    await failCall(err);
    throw publicError(err);
  } finally {
    // Not settled: the client went away mid-stream, which the object hears as an abandoned socket.
    opts.call.release(settled ? NORMAL_CLOSURE : SPINE_CLOSE.abandoned);
  }
}

/** Ends this side of a call whose stream went away before it finished. */
export function abandon(socket: CallSocket): void {
  socket.close(SPINE_CLOSE.abandoned, "went away");
}

/**
 * Applies a client's messages to the call as they arrive, without waiting for the object's
 * answer to one before reading the next: they travel one socket, so the object applies them in
 * the order sent, and a machine's answer and its first candidates go out back to back. The first
 * refusal ends the stream at once, even while the client sends nothing. `apply` makes the request
 * for one message (or throws for a malformed one) and says whether it was the client's last.
 */
export async function applyInOrder<T>(messages: AsyncIterable<T>,
  apply: (message: T) => { answer: Promise<Result<void>>; last: boolean }): Promise<"last" | "ended"> {
  let refuse!: (err: unknown) => void;
  const refused = new Promise<never>((_, reject) => { refuse = reject; });
  refused.catch(() => undefined);
  const answers: Promise<void>[] = [];
  const iterator = messages[Symbol.asyncIterator]();
  for (;;) {
    const next = await Promise.race([iterator.next(), refused]);
    if (next.done) {
      await Promise.all(answers);
      return "ended";
    }
    const { answer, last } = apply(next.value);
    const checked = answer.then((result) => {
      if (result.ok) return;
      const err = new ConnectError(result.message, result.code);
      refuse(err);
      throw err;
    });
    checked.catch(() => undefined); // seen through `refused` or Promise.all
    answers.push(checked);
    if (last) {
      await Promise.all(answers);
      return "last";
    }
  }
}


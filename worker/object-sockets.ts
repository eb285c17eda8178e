// The doors' end of the spine's sockets: a WebSocket to a call's object, on which its signals are
// pushed as they happen, and the sockets of a waiting answerer to its hosts' objects. Opening one
// is one object request (`stub.fetch` upgrade); everything after rides on it, and the object may
// hibernate between messages while the door keeps waiting (a Worker waiting costs no duration).
import { NORMAL_CLOSURE } from "../model/close-codes";
import { Code, ConnectError } from "@connectrpc/connect";
import { asyncQueue } from "../client/async-queue";
import type { CallObject } from "../durable-objects/call";
import type { Door, IceCandidate, Side, Signal } from "../model/call-model";
import type { HostObject } from "../durable-objects/host";
import { failure, success, type Failure, type Result } from "../model/result";
import {
  encodeStartCall, SPINE_CLOSE, START_HEADER, type CallPush, type CallRequest, type HostPush, type StartCall,
} from "../durable-objects/spine-messages";
import { SPINE_RECONNECTS } from "../model/limits";


/** Opens a WebSocket to an object, or returns the object's refusal as a failure. */
async function connect(stub: DurableObjectStub<CallObject> | DurableObjectStub<HostObject>, query: Record<string, string>,
  headers: Record<string, string> = {}): Promise<Result<WebSocket>> {
  const url = `https://object/socket?${new URLSearchParams(query)}`;
  const res = await stub.fetch(url, { headers: { ...headers, upgrade: "websocket" } });
  const ws = res.webSocket;
  if (res.status !== 101 || !ws) {
    const body = await res.json<{ code?: Code; message?: string }>().catch(() => ({} as { code?: Code; message?: string }));
    return failure(body.code ?? Code.Unavailable, body.message ?? `object refused the socket (${res.status})`);
  }
  ws.accept();
  return success(ws);
}

type CallRequestBody = CallRequest extends infer R ? R extends { id: number } ? Omit<R, "id"> : never : never;

/**
 * One side's socket to a call. `signals()` yields what the other side sends, in order, each once;
 * `request()` applies what this side says. A socket that breaks under the door (the object was
 * reset) is reopened with the cursor, up to SPINE_RECONNECTS times; the object resends its backlog
 * from there.
 */
export class CallSocket {
  private ws!: WebSocket;
  private nextRequest = 1;
  /** Requests not answered yet, in the order they were made: sent at once while the socket is
   * open, and all sent again, in that order, on the socket that replaces a broken one (each is
   * safe to repeat: a candidate carries its index). */
  private readonly unanswered = new Map<number, { body: CallRequestBody; settle: (result: Result<void>) => void }>();
  private readonly pushed = asyncQueue<Signal | "end" | Error>();
  /** The seq of the next signal this side expects. */
  private cursor = 0;
  private closing = false;
  private reconnects = 0;
  /** The socket broke and could not be reopened: every request fails so. */
  private broken: Failure | undefined;
  /** The object's `wake`: when this door's clock sends it a tick. */
  private wakeTimer: number | null = null;
  /** The object said the call has ended (not only that the other side is done). */
  callEnded = false;

  private constructor(private readonly env: Env, readonly callId: string, private readonly side: Side,
    private readonly identity: string, private readonly door?: Door) {}

  /** The caller's socket: creates the call and rings its host (not_found when nobody answers).
   * It opens through the host's object with the call in its upgrade (START_HEADER), so the call's
   * object is created beside the host and the offer needs no second request. The door admits the
   * request first (worker/rate-limit.ts): a refused one must not create a call. */
  static async start(env: Env, callId: string, call: StartCall): Promise<CallSocket> {
    const socket = new CallSocket(env, callId, "caller", call.caller.identity);
    const opened = await socket.connectOnce(
      { side: "caller", identity: call.caller.identity, start: "1", call: callId, deadline: String(call.deadline) },
      env.HOSTS.getByName(call.host), { [START_HEADER]: encodeStartCall(call) });
    if (!opened.ok) throw new ConnectError(opened.message, opened.code);
    return socket;
  }

  /** The callee's socket, taking the call; a failure when someone else took it or it has ended. */
  static async claim(env: Env, callId: string, identity: string, door: Door): Promise<Result<CallSocket>> {
    const socket = new CallSocket(env, callId, "callee", identity, door);
    const opened = await socket.connectOnce({ side: "callee", identity, claim: door });
    return opened.ok ? success(socket) : opened;
  }

  /** Opens this side's socket, to the call's object unless `via` (the host's, for the start). */
  private async connectOnce(query: Record<string, string>, via?: DurableObjectStub<HostObject>,
    headers?: Record<string, string>): Promise<Result<void>> {
    const ws = await connect(via ?? this.env.CALLS.getByName(this.callId), query, headers);
    if (!ws.ok) return ws;
    this.ws = ws.value;
    this.ws.addEventListener("message", (e) => this.onPush(ws.value, e.data));
    this.ws.addEventListener("close", () => this.onBroken(ws.value));
    this.ws.addEventListener("error", () => this.onBroken(ws.value));
    return success(undefined);
  }

  private onPush(ws: WebSocket, data: string | ArrayBuffer): void {
    if (ws !== this.ws) return;
    const push = JSON.parse(typeof data === "string" ? data : new TextDecoder().decode(data)) as CallPush;
    if ("reply" in push) {
      const request = this.unanswered.get(push.reply);
      this.unanswered.delete(push.reply);
      request?.settle(push.ok ? success(undefined) : failure(push.code, push.message));
    } else if ("seq" in push) {
      if (push.seq < this.cursor) return; // resent after a reconnect, and already yielded
      this.cursor = push.seq + 1;
      this.pushed.push(push.signal);
    } else if ("end" in push) {
      this.callEnded = push.over;
      this.pushed.push("end");
    } else if ("wake" in push) {
      // The object's deadline, kept by this door's clock: a waiting Worker costs nothing, where
      // the object's alarm would cost a write.
      clearTimeout(this.wakeTimer);
      this.wakeTimer = push.wake === null ? null
        : setTimeout(() => void this.request({ op: "tick" }), Math.max(0, push.wake - Date.now()) + 1);
    }
  }

  /** The socket closed without the door closing it: reopen it from the cursor. */
  private onBroken(ws: WebSocket): void {
    if (ws !== this.ws || this.closing) return;
    this.ws = undefined as unknown as WebSocket;
    if (++this.reconnects > SPINE_RECONNECTS) {
      this.fail(failure(Code.Unavailable, "the call's object is unreachable"));
      return;
    }
    void (async () => {
      await new Promise((r) => setTimeout(r, 20 * this.reconnects));
      // The callee claims again: the object writes no claim of its own, so one reset under it has
      // forgotten who took the call.
      const reopened = await this.connectOnce({ side: this.side, identity: this.identity, cursor: String(this.cursor),
        ...(this.door ? { claim: this.door } : {}) })
        .catch((err: unknown) => failure(Code.Unavailable, String(err)));
      // A request in flight when the socket broke may or may not have been applied; each is safe to
      // repeat, so all go again, in order; they fail only if reopening does.
      if (!reopened.ok) this.fail(reopened);
      else for (const id of this.unanswered.keys()) this.send(id);
    })();
  }

  /** Every request waiting for an answer gets `failed`, and so does the reader of the signals. */
  private fail(failed: Failure): void {
    this.broken = failed;
    for (const { settle } of this.unanswered.values()) settle(failed);
    this.unanswered.clear();
    this.pushed.push(new ConnectError(failed.message, failed.code));
  }

  /** Applies one thing this side says; the object's answer, as a Result. Requests may be made
   * without waiting for the answers to earlier ones: the object applies them in the order made. */
  request(body: CallRequestBody): Promise<Result<void>> {
    if (this.closing) return Promise.resolve(failure(Code.Canceled, "this side has left the call"));
    if (this.broken) return Promise.resolve(this.broken);
    const id = this.nextRequest++;
    return new Promise((settle) => {
      this.unanswered.set(id, { body, settle });
      this.send(id);
    });
  }

  /** Sends request `id`; while the socket is being replaced, the reopened one sends it. */
  private send(id: number): void {
    const request = this.unanswered.get(id);
    if (!request || !this.ws) return;
    try {
      this.ws.send(JSON.stringify({ ...request.body, id }));
    } catch {
      // Closing under us: its close handler reopens the socket and sends the request again.
    }
  }

  /** The candidate this side sends as its `index`-th: a repeat after a reconnect is applied once. */
  candidate(candidate: IceCandidate, index: number): Promise<Result<void>> {
    return this.request({ op: "candidate", candidate, index });
  }

  /** This side's signals, in order, until nothing more will arrive (or the door stops reading). */
  async *signals(): AsyncGenerator<Signal> {
    for await (const item of this.pushed) {
      if (item === "end") return;
      if (item instanceof Error) throw item;
      yield item;
    }
  }

  /** 1000: this side finished (the object leaves the call as it is); SPINE_CLOSE.abandoned: its
   * client went away, which ends the call for the other side at once. */
  close(code: number, reason = ""): void {
    if (this.closing) return;
    this.closing = true;
    clearTimeout(this.wakeTimer);
    this.pushed.close();
    // Nobody is left to read their answers: whoever still waits on one is told so.
    for (const { settle } of this.unanswered.values()) settle(failure(Code.Canceled, "this side has left the call"));
    this.unanswered.clear();
    try {
      this.ws?.close(code, reason);
    } catch { /* already closed */ }
  }
}

/**
 * A waiting answerer: one socket to the HostObject of each identity it answers for. `take` waits
 * for the next call any of them pushes and claims it; the socket of the host whose call it took
 * stays open while the call runs (a busy host is online), the others close.
 */
export class Answerer {
  private readonly offers = asyncQueue<{ host: string; callId: string } | Error>();
  private readonly sockets = new Map<string, WebSocket>();
  private closed = false;
  /** The host whose call this answerer took: its socket closes with 1000 (the call was taken). */
  private takenFrom: string | undefined;
  private readonly answererId = crypto.randomUUID();
  private readonly reconnects = new Map<string, number>();

  private constructor(private readonly env: Env, private readonly door: Door, private readonly only?: string) {}

  static async open(env: Env, hosts: string[], door: Door, only?: string, admit = false): Promise<Answerer> {
    const answerer = new Answerer(env, door, only);
    await Promise.all(hosts.map((host) => answerer.connect(host, admit)));
    return answerer;
  }

  /** `admit`: the first socket's request is admitted by the host object (a reconnect is not). */
  private async connect(host: string, admit = false): Promise<void> {
    const opened = await connect(this.env.HOSTS.getByName(host), {
      answerer: this.answererId, door: this.door, ...(this.only ? { only: this.only } : {}), ...(admit ? { admit: "1" } : {}) });
    if (!opened.ok) throw new ConnectError(opened.message, opened.code);
    const ws = opened.value;
    this.sockets.set(host, ws);
    ws.addEventListener("message", (e) => {
      const push = JSON.parse(String(e.data)) as HostPush;
      this.offers.push({ host, callId: push.call });
    });
    const broken = () => {
      if (this.closed || this.sockets.get(host) !== ws) return;
      this.sockets.delete(host);
      // Busy with this host's call: the socket only kept the host online; nothing to wait for.
      if (host === this.takenFrom) return;
      // The host object was reset under the wait: ask the fresh instance again.
      const tries = (this.reconnects.get(host) ?? 0) + 1;
      this.reconnects.set(host, tries);
      if (tries > SPINE_RECONNECTS) {
        this.offers.push(new ConnectError(`host ${host} is unreachable`, Code.Unavailable));
        return;
      }
      setTimeout(() => void this.connect(host).catch((err: unknown) => this.offers.push(err as Error)), 20 * tries);
    };
    ws.addEventListener("close", broken);
    ws.addEventListener("error", broken);
  }

  /**
   * The next call handed to this answerer, claimed: its id, the host it is for and the callee's
   * socket to it. Null when `abort` fires first (the caller then heartbeats and waits again on the
   * same sockets). A call taken elsewhere meanwhile is given back and the wait goes on.
   */
  async take(abort: AbortSignal): Promise<{ callId: string; host: string; socket: CallSocket } | null> {
    const offers = this.offerReader;
    while (true) {
      const aborted = new Promise<null>((resolve) => {
        if (abort.aborted) resolve(null);
        abort.addEventListener("abort", () => resolve(null), { once: true });
      });
      const next = await Promise.race([this.pendingOffer ?? (this.pendingOffer = offers.next()), aborted]);
      if (next === null) return null;
      this.pendingOffer = undefined;
      if (next.done) return null;
      if (next.value instanceof Error) throw next.value;
      const { host, callId } = next.value;
      const claimed = await CallSocket.claim(this.env, callId, host, this.door);
      if (claimed.ok) {
        // Busy with this call: the other hosts' sockets go, and any call they handed out meanwhile
        // goes back in line there (SPINE_CLOSE.elsewhere).
        for (const [other, ws] of this.sockets) {
          if (other === host) continue;
          this.sockets.delete(other);
          try { ws.close(SPINE_CLOSE.elsewhere, "took another host's call"); } catch { /* gone */ }
        }
        this.takenFrom = host;
        return { callId, host, socket: claimed.value };
      }
      // Taken through another door, or already over: idle again at that host.
      try { this.sockets.get(host)?.send(JSON.stringify({ op: "free" })); } catch { /* gone */ }
    }
  }

  /** One reader of the offers for every `take`, and the read a `take` that stopped left pending
   * (the next `take` picks it up, so no offer is read and dropped). */
  private readonly offerReader = this.offers[Symbol.asyncIterator]();
  private pendingOffer: Promise<IteratorResult<{ host: string; callId: string } | Error>> | undefined;

  /** Stops waiting. Every socket but the one of the host whose call was taken closes with
   * SPINE_CLOSE.elsewhere, so a call handed out and not taken (it raced the close) goes back in line. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.offers.close();
    for (const [host, ws] of this.sockets) {
      const taken = host === this.takenFrom;
      try { ws.close(taken ? NORMAL_CLOSURE : SPINE_CLOSE.elsewhere, taken ? "call taken" : "stopped waiting"); } catch { /* gone */ }
    }
    this.sockets.clear();
  }
}

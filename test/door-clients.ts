// Clients of the real Worker's doors for the fault, limit and decoder tests: a Viam caller, a
// Voice callee, an audio-relay socket and a SIP account, each as small as those tests need.
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { env, exports } from "cloudflare:workers";
import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import { expect } from "vitest";
import { Sip } from "../proto/gen/ondewo/sip/sip_pb";
import { SignalingService, type CallResponse } from "../proto/gen/proto/rpc/webrtc/v1/signaling_pb";
import { ClientSignalSchema, VoiceService, type Signal } from "../proto/gen/protocol/voice/v1/voice_pb";
import { encode, type AudioPacket } from "../codecs/audio-codec";
import type { Signal as CallSignal } from "../model/call-model";
import type { CallPush } from "../durable-objects/spine-messages";
import { clientFor, pushable } from "./connect-clients";
import { tokenFor } from "./tokens";
export { codeOf, errorOf } from "./rpc-outcomes";

let seq = 0;
/** A name no other test uses (identities, hosts, rooms, accounts). */
export const unique = (role: string) => `${role}-${Date.now().toString(36)}-${seq++}`;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A candidate line that names its number, so order and duplicates show. */
export const candidateLine = (n: number) => `candidate:${n} 1 udp 2122260223 10.0.${n >> 8}.${n & 255} ${50000 + n} typ host`;
export const viamCandidate = (n: number) => ({ candidate: candidateLine(n), sdpMid: "0", sdpmLineIndex: 0 });

export async function viamClient(identity: string, host: string): Promise<Client<typeof SignalingService>> {
  return clientFor(SignalingService, { authorization: `Bearer ${await tokenFor(identity)}`, "rpc-host": host });
}

/** A Viam caller's Call stream: read its responses one at a time. */
export async function viamCall(identity: string, host: string, sdp = "offer", signal?: AbortSignal) {
  const client = await viamClient(identity, host);
  const stream = client.call({ sdp }, { signal })[Symbol.asyncIterator]();
  return {
    client,
    next: async (): Promise<CallResponse | null> => {
      const r = await stream.next();
      return r.done ? null : r.value;
    },
    /** Stops reading: the Call stream is cancelled, as a dialer does once it is done with it. */
    close: async (): Promise<void> => { await stream.return?.(undefined); },
  };
}

/** A Voice client's bidi stream: push signals, read the server's one at a time. */
export async function openVoice(identity: string, signal?: AbortSignal) {
  const client = clientFor(VoiceService, { authorization: `Bearer ${await tokenFor(identity)}` });
  const outbox = pushable<MessageInitShape<typeof ClientSignalSchema>>();
  let callId: string | undefined;
  const stream = client.connect(outbox, { signal, onHeader: (h) => { callId = h.get("voice-call-id") ?? callId; } })[Symbol.asyncIterator]();
  return {
    /** The call this stream took (the voice-call-id response header), once its offer arrived. */
    callId: () => callId,
    send: (s: MessageInitShape<typeof ClientSignalSchema>) => outbox.push(s),
    answer: (sdp: string) => outbox.push({ event: { case: "answer", value: { answer: sdp } } }),
    candidate: (text: string) => outbox.push({ event: { case: "candidate", value: { candidate: text } } }),
    close: () => outbox.close(),
    next: async (): Promise<Signal | null> => {
      const r = await stream.next();
      return r.done ? null : r.value;
    },
  };
}

/** Waits until `host` has at least one answerer online (a stream registers asynchronously). */
export async function waitOnline(host: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await env.HOSTS.getByName(host).status()).online) return;
    await sleep(20);
  }
  throw new Error(`${host} never came online`);
}

/** SIP: Basic credentials for an account registered with `sipAccount`. */
export function sipClient(account: string): Client<typeof Sip> {
  return clientFor(Sip, { authorization: `Basic ${btoa(`${account}:pw of ${account}`)}` });
}

export async function sipAccount(who: string): Promise<{ name: string; sip: Client<typeof Sip> }> {
  const name = unique(who);
  await clientFor(Sip, { authorization: `Bearer ${await tokenFor(name)}` }).registerAccount({ accountName: name, password: `pw of ${name}` });
  return { name, sip: sipClient(name) };
}

export interface Closed { code: number; reason: string }

/** An audio-relay socket that queues what it receives, for a test to await in order. */
export class AudioSocket {
  private readonly inbox: (ArrayBuffer | string)[] = [];
  private waiting: ((message: ArrayBuffer | string) => void) | null = null;
  readonly closed: Promise<Closed>;

  constructor(readonly identity: string, readonly ws: WebSocket) {
    ws.accept();
    ws.binaryType = "arraybuffer";
    ws.addEventListener("message", (e) => {
      const message = e.data as ArrayBuffer | string;
      if (this.waiting) {
        const wake = this.waiting;
        this.waiting = null;
        wake(message);
      } else this.inbox.push(message);
    });
    this.closed = new Promise((resolve) => ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason })));
  }

  static async join(room: string, identity: string): Promise<AudioSocket> {
    const res = await exports.default.fetch(`http://worker.test/audio/${room}?access_token=${await tokenFor(identity)}`,
      { headers: { upgrade: "websocket" } });
    expect(res.status).toBe(101);
    return new AudioSocket(identity, res.webSocket!);
  }

  send(packet: AudioPacket | Uint8Array | string): void {
    this.ws.send(typeof packet === "string" || packet instanceof Uint8Array ? packet : encode(packet));
  }

  next(timeoutMs = 5_000): Promise<ArrayBuffer | string> {
    const queued = this.inbox.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.identity} received nothing in ${timeoutMs} ms`)), timeoutMs);
      this.waiting = (message) => { clearTimeout(timer); resolve(message); };
    });
  }

  async nextBytes(): Promise<Uint8Array> {
    const message = await this.next();
    if (typeof message === "string") throw new Error(`expected a binary frame, got text ${message}`);
    return new Uint8Array(message);
  }

  /** Proves nothing arrived: a ping's pong comes back only after everything sent before it. */
  async expectNothingPending(): Promise<void> {
    this.ws.send("ping");
    expect(await this.next()).toBe("pong");
  }
}

/** An answerer waiting at `host`, as a door holds one: a socket to its HostObject, on which the
 * object pushes `{ call }` for each call it hands over. */
export async function onlineAnswerer(host: string, door = "voice"): Promise<WebSocket> {
  const res = await env.HOSTS.getByName(host).fetch(
    `https://host/socket?answerer=${crypto.randomUUID()}&door=${door}`, { headers: { upgrade: "websocket" } });
  if (!res.webSocket) throw new Error(`host socket refused: ${res.status}`);
  res.webSocket.accept();
  return res.webSocket;
}

/** The next `{ call }` a host socket is handed, or null if none comes within `ms` (generous by
 * default: a loaded CI machine is slow, and a test expecting nothing passes its own short wait). */
export function nextHandedCall(ws: WebSocket, ms = 10_000): Promise<string | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => { ws.removeEventListener("message", onMessage); resolve(null); }, ms);
    const onMessage = (e: MessageEvent) => {
      clearTimeout(timer);
      ws.removeEventListener("message", onMessage);
      resolve((JSON.parse(String(e.data)) as { call: string }).call);
    };
    ws.addEventListener("message", onMessage);
  });
}

/** Rewrites a call object's stored record, then resets every object so the next request reads it
 * afresh, as after any wake. */
export async function editStoredCall(id: string, edit: (record: { call: Record<string, any>; backlog: Record<string, { at: number }[]> }) => void) {
  await runInDurableObject(env.CALLS.getByName(id), (_o, state) => {
    const record = state.storage.kv.get<Parameters<typeof edit>[0]>("call");
    if (!record) throw new Error(`call ${id} has no stored record`);
    edit(record);
    state.storage.kv.put("call", record);
  });
  await abortAllDurableObjects();
  return env.CALLS.getByName(id);
}

/** A call object with an offer from alice, claimed and answered by a fresh host (online with one
 * waiting answerer), driven by RPC: for tests of the object itself. */
export async function answeredCallObject() {
  const host = unique("host");
  const id = crypto.randomUUID();
  await onlineAnswerer(host);
  const call = env.CALLS.getByName(id);
  await call.start(id, { host, caller: { identity: "alice", door: "viam" }, sdp: "offer", disableTrickle: false, deadline: Date.now() + 10_000 });
  await call.claim({ identity: host, door: "voice" });
  await call.act("callee", host, { op: "answer", sdp: "answer" });
  return { host, id, call };
}

/** A door's socket to a call object as `side` (a reconnect from `cursor`): the signals pushed to
 * it, one at a time, as a door reads them. */
export async function followCall(id: string, side: "caller" | "callee", identity: string, cursor = 0) {
  const res = await env.CALLS.getByName(id).fetch(
    `https://object/socket?side=${side}&identity=${encodeURIComponent(identity)}&cursor=${cursor}`, { headers: { upgrade: "websocket" } });
  if (!res.webSocket) throw new Error(`call socket refused: ${res.status} ${await res.text()}`);
  const ws = res.webSocket;
  ws.accept();
  const inbox: CallPush[] = [];
  let waiting: (() => void) | null = null;
  ws.addEventListener("message", (e) => {
    inbox.push(JSON.parse(String(e.data)) as CallPush);
    waiting?.();
  });
  const nextPush = async (timeoutMs = 5_000): Promise<CallPush> => {
    const until = Date.now() + timeoutMs;
    while (inbox.length === 0) {
      if (Date.now() > until) throw new Error(`no push for the ${side} within ${timeoutMs} ms`);
      await new Promise<void>((r) => { waiting = r; setTimeout(r, 50); });
      waiting = null;
    }
    return inbox.shift()!;
  };
  return {
    ws,
    /** The next `n` signals with their seqs, skipping the object's other pushes (wake times). */
    signals: async (n: number) => {
      const got: { seq: number; signal: CallSignal }[] = [];
      while (got.length < n) {
        const push = await nextPush();
        if ("seq" in push) got.push(push);
      }
      return got;
    },
    /** Whether the object said nothing more will arrive (`end`), skipping wake times. */
    ended: async () => {
      for (;;) {
        const push = await nextPush();
        if ("end" in push) return push;
      }
    },
    close: () => ws.close(1000, "test over"),
  };
}

/** A Viam caller and a Voice callee in one call, answered but not done (a live room of two): the
 * call id, both identities and both ends' streams. A test keeps the returned object (not only the
 * id) until it is done with the call, and ends it with `hangUpClients`: a client stream nobody
 * references any more may be collected and cancelled, which the call's doors hear as the client
 * going away, so the call ends under the test. */
export async function answeredVoiceCall() {
  const caller = unique("alice");
  const callee = unique("bob");
  const voice = await openVoice(callee);
  const offered = voice.next();
  await waitOnline(callee);
  const viam = (await viamClient(caller, callee)).call({ sdp: "v=0\r\noffer\r\n" })[Symbol.asyncIterator]();
  await offered;
  voice.answer("v=0\r\nanswer\r\n");
  const init = (await viam.next()).value!;
  return { id: init.uuid, caller, callee, viam, voice };
}

/** Closes both clients of an answeredVoiceCall (the call's doors hear them leave). */
export async function hangUpClients(call: Awaited<ReturnType<typeof answeredVoiceCall>>): Promise<void> {
  call.voice.close();
  await call.viam.return?.(undefined);
}

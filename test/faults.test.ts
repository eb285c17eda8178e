// Faults, through the real Worker and objects: objects reset or evicted mid-exchange, clients
// dropping mid-call and reconnecting with the same identity, and peers that die without a word.
//
// workerd evicts an object only once nothing references it (so does the platform: an object with a
// request in flight is not evicted), and the doors long-poll their call object for as long as a
// call lasts. Mid-exchange faults are therefore resets (abortAllDurableObjects: every instance torn
// down at once, in-flight RPCs failing, as a deploy or a crash does), which is the harsher fault;
// evictDurableObject is used where an object is idle between two signals.
import { Code } from "@connectrpc/connect";
import { env } from "cloudflare:workers";
import { abortAllDurableObjects, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { SipStatus_StatusType as S } from "../proto/gen/ondewo/sip/sip_pb";
import type { AudioRoom } from "../durable-objects/audio-room";
import type { CallState } from "../model/call-model";
import { AudioMessageType, encode, SampleFormat, type AudioPacket } from "../codecs/audio-codec";
import {
  answeredCallObject, AudioSocket, candidateLine, codeOf, editStoredCall, errorOf, followCall, nextHandedCall, onlineAnswerer, openVoice,
  sipAccount, sipClient, sleep, unique, viamCall,
  viamCandidate,
  waitOnline,
} from "./door-clients";

const EMPTY = new Uint8Array(0);
const PARAMS = { sampleRate: 16_000, channels: 1, format: SampleFormat.Int16, chunkSize: 320 };
const handshake = (username: string): AudioPacket => ({ type: AudioMessageType.Handshake, params: PARAMS, username, optional: EMPTY });
const accept: AudioPacket = { type: AudioMessageType.Accept, optional: EMPTY };
const drop = encode({ type: AudioMessageType.Drop, optional: EMPTY });
const data = (n: number): AudioPacket => ({ type: AudioMessageType.Data, data: new Uint8Array([n, n, n, n]) });

/** A Viam caller and a Voice callee in a call, past offer and answer. */
async function answeredCall(opts: { callerAbort?: AbortSignal; calleeAbort?: AbortSignal } = {}) {
  const caller = unique("caller");
  const callee = unique("callee");
  const voice = await openVoice(callee, opts.calleeAbort);
  await waitOnline(callee);
  const call = await viamCall(caller, callee, "offer", opts.callerAbort);
  expect((await voice.next())?.event).toMatchObject({ case: "offer", value: { offer: "offer" } });
  voice.answer("answer");
  const init = await call.next();
  expect(init?.stage).toMatchObject({ case: "init", value: { sdp: "answer" } });
  return { caller, callee, voice, call, uuid: init!.uuid };
}

/** Everything a Voice callee receives until its stream ends: candidate lines, in order. */
async function voiceCandidates(voice: Awaited<ReturnType<typeof openVoice>>): Promise<string[]> {
  const seen: string[] = [];
  for (let s = await voice.next(); s; s = await voice.next()) {
    if (s.event.case === "candidate") seen.push((JSON.parse(s.event.value.candidate) as { candidate: string }).candidate);
  }
  return seen;
}

async function viamCandidates(call: Awaited<ReturnType<typeof viamCall>>): Promise<string[]> {
  const seen: string[] = [];
  for (let r = await call.next(); r; r = await call.next()) {
    if (r.stage.case === "update") seen.push(r.stage.value.candidate!.candidate);
  }
  return seen;
}

async function pairedAudio(room = unique("room")) {
  const alice = await AudioSocket.join(room, unique("alice"));
  const bob = await AudioSocket.join(room, unique("bob"));
  alice.send(handshake(bob.identity));
  await bob.next();
  bob.send(accept);
  await alice.next();
  return { room, alice, bob };
}

const roomStub = (room: string) => env.AUDIO_ROOMS.getByName(room);

/** A Viam caller and a Voice callee whose stream took the call's offer, not yet answered. */
async function takenCall() {
  const callee = unique("callee");
  const voice = await openVoice(callee);
  await waitOnline(callee);
  const call = await viamCall(unique("caller"), callee);
  expect((await voice.next())?.event.case).toBe("offer");
  return { voice, call, id: voice.callId()! };
}

describe("a claim held only by the callee's socket", () => {
  it("is not written: the stored record still says offered once the callee took the call", async () => {
    // Both clients stay referenced until the end: a stream collected under the test would end the call.
    const { voice, call, id } = await takenCall();
    const stored = await runInDurableObject(env.CALLS.getByName(id), (_o, state) => state.storage.kv.get<{ call: CallState }>("call"));
    expect(stored?.call.phase).toBe("offered");
    voice.close();
    await call.close();
  });

  it("survives an eviction with the sockets open: the callee answers and the history has the claim in order", async () => {
    const { voice, call, id } = await takenCall();
    await evictDurableObject(env.CALLS.getByName(id));
    voice.answer("answer");
    expect((await call.next())?.stage).toMatchObject({ case: "init", value: { sdp: "answer" } });
    const statuses = (await env.CALLS.getByName(id).history()).map((h) => h.status);
    expect(statuses).toEqual(["offered", "claimed", "answered"]);
  });

  it("is taken again by the callee's reconnecting socket after a reset, so the answer still reaches the caller", async () => {
    const { voice, call, id } = await takenCall();
    await abortAllDurableObjects();
    voice.answer("answer");
    expect((await call.next())?.stage).toMatchObject({ case: "init", value: { sdp: "answer" } });
    const statuses = (await env.CALLS.getByName(id).history()).map((h) => h.status);
    expect(statuses).toEqual(["offered", "claimed", "answered"]);
  });
});

describe("a call object reset mid-exchange", () => {
  it("delivers every candidate both ways exactly once and in order across resets that strike in-flight RPCs", async () => {
    const { voice, call, uuid } = await answeredCall();
    const toCallee = voiceCandidates(voice);
    const toCaller = viamCandidates(call);
    for (let round = 0; round < 4; round++) {
      const sends: Promise<unknown>[] = [];
      for (let i = round * 5; i < round * 5 + 5; i++) {
        voice.candidate(candidateLine(100 + i));
        sends.push(call.client.callUpdate({ uuid, update: { case: "candidate", value: viamCandidate(i) } }));
      }
      // Reset while the callee's candidates are on their way through its door (not awaited), and
      // after the caller's unary RPCs have returned (a failed unary RPC is the client's to retry).
      await Promise.all(sends);
      await abortAllDurableObjects();
    }
    voice.close();
    await call.client.callUpdate({ uuid, update: { case: "done", value: true } });

    expect(await toCallee).toEqual(Array.from({ length: 20 }, (_, i) => candidateLine(i)));
    expect(await toCaller).toEqual(Array.from({ length: 20 }, (_, i) => candidateLine(100 + i)));
    const statuses = (await env.CALLS.getByName(uuid).history()).map((h) => h.status);
    // The two dones race; each is recorded once, and the exchange completes.
    expect(statuses.slice(0, 3)).toEqual(["offered", "claimed", "answered"]);
    expect(statuses.slice(3, 5).sort()).toEqual(["callee_done", "caller_done"]);
    expect(statuses.slice(5)).toEqual(["exchanged"]);
  });

  it("keeps queued signals across an eviction: a reader resuming from its cursor gets each exactly once, in order", async () => {
    const { host, id, call } = await answeredCallObject();
    for (let i = 0; i < 5; i++) await call.act("caller", "alice", { op: "candidate", candidate: { candidate: candidateLine(i) } });
    const reader = await followCall(id, "callee", host);
    const first = await reader.signals(6); // the offer, then five candidates
    const cursor = first.at(-1)!.seq + 1;
    reader.close();
    for (let i = 5; i < 10; i++) await call.act("caller", "alice", { op: "candidate", candidate: { candidate: candidateLine(i) } });

    await evictDurableObject(call);
    const again = await (await followCall(id, "callee", host, cursor)).signals(5);
    const lines = (signals: typeof first) =>
      signals.flatMap((s) => (s.signal.kind === "candidate" ? [s.signal.candidate.candidate] : []));
    expect([...lines(first), ...lines(again)]).toEqual(Array.from({ length: 10 }, (_, i) => candidateLine(i)));
  });

  it("applies a candidate that a door retries after a reset only once", async () => {
    const { host, id, call } = await answeredCallObject();
    // The first attempt was applied, then the object was reset before the door heard back.
    expect((await call.act("callee", host, { op: "candidate", candidate: { candidate: candidateLine(0) }, index: 0 })).ok).toBe(true);
    await abortAllDurableObjects();
    const fresh = env.CALLS.getByName(id);
    expect((await fresh.act("callee", host, { op: "candidate", candidate: { candidate: candidateLine(0) }, index: 0 })).ok).toBe(true);
    expect((await fresh.act("callee", host, { op: "answer", sdp: "answer" })).ok).toBe(true);
    const caller = await followCall(id, "caller", "alice");
    expect((await caller.signals(2)).map((s) => s.signal.kind)).toEqual(["answer", "candidate"]);
  });
});

describe("a host object reset or evicted", () => {
  it("keeps a waiting Voice stream online across a reset of its host object, so it takes the next call", async () => {
    const callee = unique("callee");
    const voice = await openVoice(callee);
    await waitOnline(callee);
    await abortAllDurableObjects();
    // The stream's socket to the host object reconnects to the fresh instance within milliseconds.
    await waitOnline(callee);
    const call = await viamCall(unique("caller"), callee);
    // Before the fix the stream failed with `internal` here and the caller got deadline_exceeded.
    expect((await voice.next())?.event.case).toBe("offer");
    voice.answer("answer");
    expect((await call.next())?.stage.case).toBe("init");
  });

  it("keeps a queued call across an eviction of its host object", async () => {
    const host = unique("host");
    const hosts = env.HOSTS.getByName(host);
    const busy = await onlineAnswerer(host);
    const first = nextHandedCall(busy);
    expect((await hosts.enqueue(crypto.randomUUID(), Date.now() + 10_000)).ok).toBe(true);
    expect(await first).not.toBeNull();
    // Its only answerer is busy: the next call waits in line, through an eviction.
    const id = crypto.randomUUID();
    expect((await hosts.enqueue(id, Date.now() + 10_000)).ok).toBe(true);
    await evictDurableObject(hosts);
    expect(await nextHandedCall(await onlineAnswerer(host))).toBe(id);
  });

  it("finishes an exchange whose host object is evicted after the callee took the call", async () => {
    const { callee, voice, call, uuid } = await answeredCall();
    await evictDurableObject(env.HOSTS.getByName(callee));
    await call.client.callUpdate({ uuid, update: { case: "candidate", value: viamCandidate(1) } });
    expect(JSON.parse(((await voice.next())?.event.value as { candidate: string }).candidate)).toMatchObject({ candidate: candidateLine(1) });
    voice.close();
    expect(await call.next()).toBeNull();
  });
});

describe("a client dropping mid-call, and its identity coming back", () => {
  it("Voice: tells the caller `unavailable` when the callee's stream drops, and takes the same identity's next stream at once", async () => {
    const cut = new AbortController();
    const { callee, call } = await answeredCall({ calleeAbort: cut.signal });
    cut.abort();
    const err = await errorOf(call.next());
    expect(err.code).toBe(Code.Unavailable);
    expect(err.rawMessage).toMatch(/disconnected/);

    // No "identity taken": the same identity is online again with its next stream.
    const again = await openVoice(callee);
    await waitOnline(callee);
    const next = await viamCall(unique("caller"), callee, "second offer");
    expect((await again.next())?.event).toMatchObject({ case: "offer", value: { offer: "second offer" } });
    again.answer("second answer");
    expect((await next.next())?.stage).toMatchObject({ case: "init", value: { sdp: "second answer" } });
  });

  it("Viam: tells the Voice callee `unavailable` when the caller's Call stream drops mid-call", async () => {
    const cut = new AbortController();
    const { voice, uuid } = await answeredCall({ callerAbort: cut.signal });
    cut.abort();
    // Noticed through request.signal (wrangler.toml: enable_request_signal), not at the next signal.
    const err = await errorOf(voiceCandidates(voice));
    expect(err.code).toBe(Code.Unavailable);
    const history = await env.CALLS.getByName(uuid).history();
    expect(history.at(-1)).toMatchObject({ status: "failed", side: "caller", detail: "the caller disconnected" });
  });

  it("audio: drops the peer when a socket goes away mid-call, and lets the same identity straight back in", async () => {
    const { room, alice, bob } = await pairedAudio();
    bob.ws.close(1000, "network change");
    expect(await alice.nextBytes()).toEqual(drop);

    const bobAgain = await AudioSocket.join(room, bob.identity);
    alice.send(handshake(bob.identity));
    expect(await bobAgain.nextBytes()).toEqual(encode(handshake(alice.identity)));
    bobAgain.send(accept);
    expect(await alice.nextBytes()).toEqual(encode(accept));
    alice.send(data(7));
    expect(await bobAgain.nextBytes()).toEqual(encode(data(7)));
  });

  it("audio: lets the same identity in while its old socket still looks alive; the newer socket wins", async () => {
    const { room, alice, bob } = await pairedAudio();
    const bobAgain = await AudioSocket.join(room, bob.identity);
    expect((await bob.closed).code).toBe(1008);
    expect(await alice.nextBytes()).toEqual(drop);
    alice.send(handshake(bob.identity));
    expect(await bobAgain.nextBytes()).toEqual(encode(handshake(alice.identity)));
  });

  it("audio: keeps a paired call across an eviction that hibernates its sockets", async () => {
    const { room, alice, bob } = await pairedAudio();
    await evictDurableObject(roomStub(room));
    alice.send(data(1));
    bob.send(data(2));
    expect(await bob.nextBytes()).toEqual(encode(data(1)));
    expect(await alice.nextBytes()).toEqual(encode(data(2)));
  });

  it("SIP: lets an account whose client vanished mid-call carry on with the same credentials", async () => {
    const alice = await sipAccount("alice");
    const bob = await sipAccount("bob");
    await alice.sip.startSession({ accountName: alice.name, autoAnswerInterval: 0 });
    await bob.sip.startSession({ accountName: bob.name, autoAnswerInterval: 1 });
    await alice.sip.startCall({ calleeId: bob.name });
    await waitForSip(alice.name, S.outgoing_call_connected);

    // alice's client is gone; a new process with the same credentials finds its session and call.
    const restarted = sipClient(alice.name);
    expect((await restarted.getSipStatus({})).statusType).toBe(S.outgoing_call_connected);
    await restarted.endCall({ hardHangup: true });
    await waitForSip(alice.name, S.outgoing_call_finished);
    await restarted.startCall({ calleeId: bob.name });
    await waitForSip(alice.name, S.outgoing_call_connected);
    await restarted.endCall({ hardHangup: true });
  });
});

async function waitForSip(account: string, type: S): Promise<void> {
  const sip = sipClient(account);
  for (let i = 0; i < 80; i++) {
    if ((await sip.getSipStatus({})).statusType === type) return;
    await sleep(100);
  }
  throw new Error(`${account} never reached ${S[type]}`);
}

describe("dead peers are detected within a stated bound", () => {
  it(`signaling: ends the call with deadline_exceeded for the caller when the callee took it and vanished unseen (signals uncollected for 60 s)`, async () => {
    // The callee's door died without a word (no abort reached the server): it claimed and answered
    // the call, then nothing collected the caller's candidates.
    const callee = unique("callee");
    const answerer = await onlineAnswerer(callee);
    const handed = nextHandedCall(answerer);
    const call = await viamCall(unique("caller"), callee);
    const answered = call.next();
    const uuid = (await handed)!;
    const stub = env.CALLS.getByName(uuid);
    await stub.claim({ identity: callee, door: "voice" });
    await stub.act("callee", callee, { op: "answer", sdp: "answer" });
    expect((await answered)?.stage.case).toBe("init");
    await call.client.callUpdate({ uuid, update: { case: "candidate", value: viamCandidate(1) } });

    // 60 s later, the call's alarm finds the callee's signals uncollected.
    const aged = await editStoredCall(uuid, (record) => {
      for (const s of record.backlog.callee) s.at = 0;
      record.call.uncollected = { ...record.call.uncollected, callee: 0 };
    });
    expect(await runDurableObjectAlarm(aged)).toBe(true);
    const err = await errorOf(call.next());
    expect(err.code).toBe(Code.DeadlineExceeded);
    expect(err.rawMessage).toMatch(/not collected in time/);
    expect((await aged.history()).at(-1)).toMatchObject({ status: "timed_out" });
  });

  it(`signaling: fails a call taken but never answered with deadline_exceeded on both sides (the 10 s offer deadline)`, async () => {
    const callee = unique("callee");
    const voice = await openVoice(callee);
    await waitOnline(callee);
    const placed = Date.now();
    const call = await viamCall(unique("caller"), callee);
    expect((await voice.next())?.event.case).toBe("offer");
    // The offer deadline passes with the call taken but unanswered (the callee froze); the object
    // reads its state afresh, as after any wake, and both doors reconnect their sockets to it.
    let deadline = 0;
    const aged = await editStoredCall(voice.callId()!, (record) => {
      deadline = record.call.offerDeadline;
      record.call.offerDeadline = Date.now() - 1;
    });
    // The door set the deadline 10 s after it placed the call.
    expect(deadline - placed).toBeGreaterThanOrEqual(10_000);
    expect(deadline - Date.now()).toBeLessThanOrEqual(10_000);
    expect(await runDurableObjectAlarm(aged)).toBe(true);
    expect(await codeOf(call.next())).toBe(Code.DeadlineExceeded);
    expect(await codeOf(voice.next())).toBe(Code.DeadlineExceeded);
  });

  it(`signaling: counts a host whose last answerer stream closed as offline 5 s after it closed, so a Call fails at once`, async () => {
    const host = unique("host");
    const answerer = await onlineAnswerer(host);
    expect((await env.HOSTS.getByName(host).status()).online).toBe(true);
    answerer.close(1000, "gone");
    await sleep(4_500);
    expect((await env.HOSTS.getByName(host).status()).online).toBe(true);
    await sleep(700);
    expect((await env.HOSTS.getByName(host).status()).online).toBe(false);
    const call = await viamCall(unique("caller"), host);
    expect(await codeOf(call.next())).toBe(Code.NotFound);
  });

  it(`audio: closes a socket that kept alive with pings and then went silent with 1001, and drops its peer (20 s + 5 s sweep)`, async () => {
    const { room, alice, bob } = await pairedAudio();
    await bob.expectNothingPending(); // bob has pinged: he promises to keep doing so
    await alice.expectNothingPending();
    // The lease later, alice has kept pinging, bob is silent: the sweep takes him for dead.
    await runInDurableObject(roomStub(room), (r: AudioRoom) => r.sweep(Date.now() + 20_000 - 1_000));
    await alice.expectNothingPending();
    await runInDurableObject(roomStub(room), (r: AudioRoom) => r.sweep(Date.now() + 20_000));
    expect(await alice.nextBytes()).toEqual(drop);
    // (alice pinged just now, so only bob is past the lease.)
    expect((await bob.closed).code).toBe(1001);
  });

  it("audio: never judges a socket that has not pinged (seed 003 has no keep-alive of its own)", async () => {
    const { room, alice, bob } = await pairedAudio();
    await runInDurableObject(roomStub(room), (r: AudioRoom) => r.sweep(Date.now() + 10 * 20_000));
    alice.send(data(3));
    expect(await bob.nextBytes()).toEqual(encode(data(3)));
  });

  it(`audio: ends a handshake nobody answers with a drop to both parties (after 30 s)`, async () => {
    const room = unique("room");
    const alice = await AudioSocket.join(room, unique("alice"));
    const bob = await AudioSocket.join(room, unique("bob"));
    alice.send(handshake(bob.identity));
    await bob.next();
    // (No ping here: a jump of the ring timeout would also put a pinging socket past its lease.)
    await runInDurableObject(roomStub(room), (r: AudioRoom) => r.sweep(Date.now() + 30_000 - 1_000));
    await runInDurableObject(roomStub(room), (r: AudioRoom) => r.sweep(Date.now() + 30_000));
    // The drop is the first thing either receives: the sweep before the timeout sent nothing.
    expect(await alice.nextBytes()).toEqual(drop);
    expect(await bob.nextBytes()).toEqual(drop);
    // A late accept from bob is discarded, not a protocol error; both can call again.
    bob.send(accept);
    await bob.expectNothingPending();
    bob.send(handshake(alice.identity));
    expect(await alice.nextBytes()).toEqual(encode(handshake(bob.identity)));
  });

  it("audio: keeps the sweep alarm set while a call is in progress, and lets it lapse once none is", async () => {
    const { room, alice, bob } = await pairedAudio();
    const stub = roomStub(room);
    await sleep(50); // the alarm is set in the background of the accept
    expect(await runInDurableObject(stub, (_r, state) => state.storage.getAlarm())).not.toBeNull();
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await runInDurableObject(stub, (_r, state) => state.storage.getAlarm())).not.toBeNull();
    alice.send(drop);
    expect(await bob.nextBytes()).toEqual(drop);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await runInDurableObject(stub, (_r, state) => state.storage.getAlarm())).toBeNull();
  });
});

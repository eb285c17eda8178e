import { Code } from "@connectrpc/connect";
import { env } from "cloudflare:workers";
import { abortAllDurableObjects, runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { editStoredCall, followCall, onlineAnswerer } from "./door-clients";

let seq = 0;
/** A call from alice to a fresh host that is online, not yet taken. */
async function startedCall() {
  const host = `callee-${Date.now().toString(36)}-${seq++}`;
  const id = crypto.randomUUID();
  await onlineAnswerer(host);
  const call = env.CALLS.getByName(id);
  const started = await call.start(id, { host, caller: { identity: "alice", door: "viam" }, sdp: "offer",
    disableTrickle: false, deadline: Date.now() + 10_000 });
  expect(started.ok).toBe(true);
  return { id, host, call };
}

/** A call from alice to a fresh host, taken by that host: the state most tests start from. */
async function claimedCall() {
  const { id, host, call } = await startedCall();
  expect((await call.claim({ identity: host, door: "voice" })).ok).toBe(true);
  return { id, host, call };
}

/** Sends `action` as request `id` on a door's call socket and waits for the object's reply. */
function sendOnSocket(ws: WebSocket, id: number, action: Record<string, unknown>): Promise<{ ok: boolean }> {
  return new Promise((resolve) => {
    const onReply = (e: MessageEvent) => {
      const push = JSON.parse(String(e.data)) as { reply?: number; ok: boolean };
      if (push.reply !== id) return;
      ws.removeEventListener("message", onReply);
      resolve(push);
    };
    ws.addEventListener("message", onReply);
    ws.send(JSON.stringify({ id, ...action }));
  });
}

const ice = (n: number) => ({ candidate: `candidate:${n}`, sdpMid: "0", sdpMLineIndex: 0 });

describe("call object", () => {
  it("hands the offer to the claimed callee, then the caller's candidates in order", async () => {
    const { id, host, call } = await claimedCall();
    for (let i = 0; i < 3; i++) await call.act("caller", "alice", { op: "candidate", candidate: ice(i) });
    const callee = await followCall(id, "callee", host);
    expect((await callee.signals(4)).map((s) => s.signal)).toEqual([
      expect.objectContaining({ kind: "offer", sdp: "offer" }),
      { kind: "candidate", candidate: ice(0) },
      { kind: "candidate", candidate: ice(1) },
      { kind: "candidate", candidate: ice(2) },
    ]);
  });

  it("gives each signal exactly once to a reader that resumes from its cursor", async () => {
    const { id, host, call } = await claimedCall();
    await call.act("caller", "alice", { op: "candidate", candidate: ice(1) });
    const first = await followCall(id, "callee", host);
    const cursor = (await first.signals(2)).at(-1)!.seq + 1;
    first.close();
    await call.act("caller", "alice", { op: "candidate", candidate: ice(2) });
    await call.act("caller", "alice", { op: "candidate", candidate: ice(3) });
    const second = await followCall(id, "callee", host, cursor);
    expect((await second.signals(2)).map((s) => s.signal)).toEqual([
      { kind: "candidate", candidate: ice(2) }, { kind: "candidate", candidate: ice(3) },
    ]);
  });

  it("refuses a claim by anyone but the call's host with permission_denied, and the host still takes it", async () => {
    const { host, call } = await startedCall();
    expect(await call.claim({ identity: "mallory", door: "voice" })).toMatchObject({ ok: false, code: Code.PermissionDenied });
    expect(await call.claim({ identity: host, door: "voice" })).toMatchObject({ ok: true, value: { callee: { identity: host } } });
    expect((await call.history()).map((h) => h.status)).toEqual(["offered", "claimed"]);
  });

  it("refuses a socket that claims the call for anyone but its host with permission_denied", async () => {
    const { id, host, call } = await startedCall();
    const res = await call.fetch(`https://object/socket?side=callee&identity=mallory&claim=voice`, { headers: { upgrade: "websocket" } });
    expect(res.webSocket).toBeNull();
    expect(await res.json()).toMatchObject({ code: Code.PermissionDenied });
    expect(await env.CALLS.getByName(id).claim({ identity: host, door: "voice" })).toMatchObject({ ok: true });
  });

  it("refuses a second answerer with failed_precondition", async () => {
    const { host, call } = await claimedCall();
    const again = await call.claim({ identity: host, door: "viam" });
    expect(again).toMatchObject({ ok: false, code: Code.FailedPrecondition });
  });

  it("refuses a second answer and an answer from someone else", async () => {
    const { host, call } = await claimedCall();
    expect((await call.act("callee", host, { op: "answer", sdp: "answer" })).ok).toBe(true);
    expect(await call.act("callee", host, { op: "answer", sdp: "answer-2" })).toMatchObject({ ok: false, code: Code.FailedPrecondition });
    expect(await call.act("callee", "mallory", { op: "answer", sdp: "answer" })).toMatchObject({ ok: false, code: Code.PermissionDenied });
  });

  it("applies a candidate sent again with the same index once: the callee gets each candidate once, in order", async () => {
    const { id, host, call } = await claimedCall();
    for (const index of [0, 0, 1, 0, 1, 2]) {
      expect((await call.act("caller", "alice", { op: "candidate", candidate: ice(index), index })).ok).toBe(true);
    }
    // One more without an index: a door that does not count its candidates is never deduplicated.
    expect((await call.act("caller", "alice", { op: "candidate", candidate: ice(9) })).ok).toBe(true);
    const callee = await followCall(id, "callee", host);
    expect((await callee.signals(5)).map((s) => s.signal)).toEqual([
      expect.objectContaining({ kind: "offer" }),
      { kind: "candidate", candidate: ice(0) },
      { kind: "candidate", candidate: ice(1) },
      { kind: "candidate", candidate: ice(2) },
      { kind: "candidate", candidate: ice(9) },
    ]);
  });

  it("saves a signal queued for a side without a socket though its sender is on one: a reset loses nothing", async () => {
    const { id, host } = await claimedCall();
    // The caller follows the call on a socket; the callee took it by RPC and has no socket.
    const caller = await followCall(id, "caller", "alice");
    expect(await sendOnSocket(caller.ws, 1, { op: "candidate", candidate: ice(5) })).toMatchObject({ ok: true });
    await abortAllDurableObjects();
    const callee = await followCall(id, "callee", host);
    expect((await callee.signals(2)).map((s) => s.signal)).toEqual([
      expect.objectContaining({ kind: "offer", sdp: "offer" }),
      { kind: "candidate", candidate: ice(5) },
    ]);
  });

  it("queues 128 signals for a side without a socket and refuses the 129th with resource_exhausted", async () => {
    const { host, call } = await claimedCall();
    await call.act("callee", host, { op: "answer", sdp: "answer" });
    // The offer already waits for the callee; fill the rest of its queue with candidates.
    for (let i = 1; i < 128; i++) {
      const r = await call.act("caller", "alice", { op: "candidate", candidate: ice(i) });
      if (!r.ok) throw new Error(`candidate ${i}: ${r.message}`);
    }
    expect(await call.act("caller", "alice", { op: "candidate", candidate: ice(0) })).toMatchObject({ ok: false, code: Code.ResourceExhausted });
  });

  it("ends the call and tells the caller when queued signals expire uncollected", async () => {
    const { id, host, call: original } = await claimedCall();
    await original.act("callee", host, { op: "answer", sdp: "answer" });
    await original.act("caller", "alice", { op: "candidate", candidate: ice(7) });
    // SIGNAL_TTL_MS later: the callee's backlog was queued long ago.
    const call = await editStoredCall(id, (record) => {
      for (const s of record.backlog.callee) s.at = 0;
      record.call.uncollected = { ...record.call.uncollected, callee: 0 };
    });
    expect(await runDurableObjectAlarm(call)).toBe(true);
    const caller = await followCall(id, "caller", "alice");
    expect((await caller.signals(2)).map((s) => s.signal)).toEqual([
      { kind: "answer", sdp: "answer" },
      expect.objectContaining({ kind: "error", code: Code.DeadlineExceeded }),
    ]);
    expect(await caller.ended()).toEqual({ end: true, over: true });
    expect((await call.history()).map((h) => h.status)).toEqual(["offered", "claimed", "answered", "timed_out"]);
  });

  it("keeps a finished call's record for an hour", async () => {
    const { id, call } = await claimedCall();
    await call.act("caller", "alice", { op: "hangup" });
    // The end a minute short of an hour ago; a fresh instance sees the aged record.
    const fresh = await editStoredCall(id, (record) => { record.call.end.at -= 60 * 60 * 1000 - 60_000; });
    await runDurableObjectAlarm(fresh);
    expect(await fresh.summary()).toMatchObject({ ok: true });
    expect((await fresh.history()).map((h) => h.status)).toEqual(["offered", "claimed", "hung_up"]);
  });

  it("deletes a finished call's record an hour after its end", async () => {
    const { id, call } = await claimedCall();
    await call.act("caller", "alice", { op: "hangup" });
    // Move the end back past the hour of retention; a fresh instance sees the aged record.
    const fresh = await editStoredCall(id, (record) => { record.call.end.at -= 60 * 60 * 1000 + 1; });
    expect(await runDurableObjectAlarm(fresh)).toBe(true);
    expect(await fresh.summary()).toMatchObject({ ok: false, code: Code.NotFound });
    expect(await fresh.history()).toEqual([]);
  });

  it("fails the call with not_found when its host has no answerer online", async () => {
    const id = crypto.randomUUID();
    const call = env.CALLS.getByName(id);
    const started = await call.start(id, { host: `nobody-${seq++}`, caller: { identity: "alice", door: "viam" },
      sdp: "offer", disableTrickle: false, deadline: Date.now() + 10_000 });
    expect(started).toMatchObject({ ok: false, code: Code.NotFound });
    expect((await call.history()).map((h) => h.status)).toEqual(["offered", "failed"]);
  });
});

import { Code } from "@connectrpc/connect";
import { env } from "cloudflare:workers";
import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CALL_RETENTION_MS, MAX_QUEUED_SIGNALS } from "../model/limits";
import { editStoredCall, followCall, onlineAnswerer } from "./door-clients";

let seq = 0;
/** A call from alice to a fresh host, taken by that host: the state every test starts from. */
async function claimedCall() {
  const host = `callee-${Date.now().toString(36)}-${seq++}`;
  const id = crypto.randomUUID();
  await onlineAnswerer(host);
  const call = env.CALLS.getByName(id);
  const started = await call.start(id, { host, caller: { identity: "alice", door: "viam" }, sdp: "offer",
    disableTrickle: false, deadline: Date.now() + 10_000 });
  expect(started.ok).toBe(true);
  expect((await call.claim({ identity: host, door: "voice" })).ok).toBe(true);
  return { id, host, call };
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

  it("bounds the signals queued for a side with resource_exhausted", async () => {
    const { host, call } = await claimedCall();
    await call.act("callee", host, { op: "answer", sdp: "answer" });
    // The offer already waits for the callee; fill the rest of its queue with candidates.
    for (let i = 1; i < MAX_QUEUED_SIGNALS; i++) {
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

  it("deletes a finished call's record after the retention period", async () => {
    const { id, call } = await claimedCall();
    await call.act("caller", "alice", { op: "hangup" });
    // Move the end back past the retention period; a fresh instance sees the aged record.
    const fresh = await editStoredCall(id, (record) => { record.call.end.at -= CALL_RETENTION_MS + 1; });
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

import { Code } from "@connectrpc/connect";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { encodeStartCall, SPINE_CLOSE, START_HEADER, type StartCall } from "../durable-objects/spine-messages";
import type { CallRecord } from "../durable-objects/call-record";
import { runInDurableObject } from "cloudflare:test";
import { nextHandedCall, onlineAnswerer, unique } from "./door-clients";

const later = () => Date.now() + 10_000;

describe("HostObject hand-over over answerer sockets", () => {
  it("pushes a call to the longest-waiting idle answerer and to no other", async () => {
    const name = unique("host");
    const first = await onlineAnswerer(name);
    const second = await onlineAnswerer(name);
    const toFirst = nextHandedCall(first), toSecond = nextHandedCall(second, 500);
    const callId = crypto.randomUUID();
    expect((await env.HOSTS.getByName(name).enqueue(callId, later())).ok).toBe(true);
    expect(await toFirst).toBe(callId);
    expect(await toSecond).toBeNull();
  });

  it("gives a call back in line when the answerer it went to goes away without taking it", async () => {
    const name = unique("host");
    const stale = await onlineAnswerer(name);
    const live = await onlineAnswerer(name);
    const toStale = nextHandedCall(stale);
    const callId = crypto.randomUUID();
    await env.HOSTS.getByName(name).enqueue(callId, later());
    expect(await toStale).toBe(callId);
    // Listening from here: live's wait starts when stale goes, not before the call was placed.
    const toLive = nextHandedCall(live);
    stale.close(SPINE_CLOSE.elsewhere, "took another host's call");
    expect(await toLive).toBe(callId);
  });

  it("keeps a call taken (socket closed with 1000) away from every other answerer", async () => {
    const name = unique("host");
    const taker = await onlineAnswerer(name);
    const callId = crypto.randomUUID();
    const handed = nextHandedCall(taker);
    await env.HOSTS.getByName(name).enqueue(callId, later());
    expect(await handed).toBe(callId);
    taker.close(1000, "call taken");
    expect(await nextHandedCall(await onlineAnswerer(name), 500)).toBeNull();
  });

  it("queues a call while every answerer is busy, and hands it to the next answerer that connects", async () => {
    const name = unique("host");
    const host = env.HOSTS.getByName(name);
    const busy = await onlineAnswerer(name);
    const handed = nextHandedCall(busy);
    await host.enqueue(crypto.randomUUID(), later());
    await handed;
    const queued = crypto.randomUUID();
    // Busy is not offline: no not_found.
    expect((await host.enqueue(queued, later())).ok).toBe(true);
    expect((await host.status()).waiting).toEqual([queued]);
    expect(await nextHandedCall(await onlineAnswerer(name))).toBe(queued);
    expect((await host.status()).waiting).toEqual([]);
  });

  it("fails a call for a host nobody ever answered for with not_found", async () => {
    const host = env.HOSTS.getByName(unique("host"));
    expect(await host.enqueue(crypto.randomUUID(), later())).toMatchObject({ ok: false, code: Code.NotFound });
  });
});

describe("HostObject as the meeting point of a new call", () => {
  /** The caller's socket as a door opens it: through the host's object, the call in its upgrade. */
  function ring(host: string, callId: string) {
    const call: StartCall = { host, caller: { identity: "alice", door: "viam" }, sdp: "v=0 offer\r\n", disableTrickle: false, deadline: later() };
    const query = new URLSearchParams({ side: "caller", identity: "alice", start: "1", call: callId, deadline: String(call.deadline) });
    return env.HOSTS.getByName(host).fetch(`https://object/socket?${query}`,
      { headers: { upgrade: "websocket", [START_HEADER]: encodeStartCall(call) } });
  }
  const storedCall = (callId: string) => runInDurableObject(env.CALLS.getByName(callId),
    (_o, state) => state.storage.kv.get<CallRecord>("call") ?? null);

  it("creates the call's object from the caller's upgrade, then hands the call to an idle answerer", async () => {
    const host = unique("host");
    const answerer = await onlineAnswerer(host);
    const handed = nextHandedCall(answerer);
    const callId = crypto.randomUUID();
    const res = await ring(host, callId);
    expect(res.status).toBe(101);
    res.webSocket!.accept();
    expect(await handed).toBe(callId);
    expect((await storedCall(callId))?.call).toMatchObject({ id: callId, host, phase: "offered", offer: "v=0 offer\r\n" });
    res.webSocket!.close(1000, "done");
  });

  it("refuses an upgrade whose call does not decode with invalid_argument, and hands nothing out", async () => {
    const host = unique("host");
    const answerer = await onlineAnswerer(host);
    const handed = nextHandedCall(answerer, 500);
    const callId = crypto.randomUUID();
    const query = new URLSearchParams({ side: "caller", identity: "alice", start: "1", call: callId, deadline: String(later()) });
    const res = await env.HOSTS.getByName(host).fetch(`https://object/socket?${query}`,
      { headers: { upgrade: "websocket", [START_HEADER]: "%7Bnot json" } });
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ code: Code.InvalidArgument });
    expect(await handed).toBeNull();
    expect(await storedCall(callId)).toBeNull();
  });

  it("refuses a call to a host nobody answers for without creating the call's object", async () => {
    const callId = crypto.randomUUID();
    const res = await ring(unique("offline"), callId);
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ code: Code.NotFound });
    expect(await storedCall(callId)).toBeNull();
  });
});


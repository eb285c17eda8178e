import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { env, exports } from "cloudflare:workers";
import { abortAllDurableObjects } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  AnswerResponseSchema, SignalingService, type AnswerRequest, type CallResponse,
} from "../proto/gen/proto/rpc/webrtc/v1/signaling_pb";
import { clientFor, pushable, type Protocol } from "./connect-clients";
import { tokenFor } from "./tokens";
import { codeOf } from "./rpc-outcomes";

type AnswerInit = MessageInitShape<typeof AnswerResponseSchema>;

let hostSeq = 0;
function uniqueHost(): string {
  return `host-${Date.now().toString(36)}-${hostSeq++}`;
}

async function signaling(identity: string, host: string, extra: Record<string, string> = {}, protocol: Protocol = "connect") {
  return clientFor(SignalingService,
    { authorization: `Bearer ${await tokenFor(identity)}`, "rpc-host": host, ...extra }, protocol);
}

/** An answering host on a bidi Answer stream: what it receives, and a way to send stages. */
async function openAnswerer(host: string, extra: Record<string, string> = {}, signal?: AbortSignal) {
  const client = await signaling(host, host, extra);
  const outbox = pushable<AnswerInit>();
  const stream = client.answer(outbox, { signal })[Symbol.asyncIterator]();
  return {
    send: (stage: AnswerInit) => outbox.push(stage),
    close: () => outbox.close(),
    next: async (): Promise<AnswerRequest | null> => {
      const r = await stream.next();
      return r.done ? null : r.value;
    },
  };
}

async function waitOnline(host: string) {
  // The answerer's stream registers with its host object asynchronously; wait for it.
  for (let i = 0; i < 100; i++) {
    if ((await env.HOSTS.getByName(host).status()).online) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${host} never came online`);
}

/** A host online on one Answer stream and alice's Call to it, up to the offer the host received.
 * `signal` aborts the Call. */
async function placedCall(signal?: AbortSignal) {
  const host = uniqueHost();
  const answerer = await openAnswerer(host);
  await waitOnline(host);
  const caller = await signaling("alice", host);
  const responses = caller.call({ sdp: "offer" }, { signal })[Symbol.asyncIterator]();
  const init = await answerer.next();
  return { host, answerer, caller, responses, uuid: init!.uuid };
}

async function collect(stream: AsyncIterable<CallResponse>) {
  const got: CallResponse[] = [];
  for await (const r of stream) got.push(r);
  return got;
}

const cand = (n: number) => ({ candidate: `candidate:${n} 1 udp 2122260223 10.0.0.${n} 5000${n} typ host`, sdpMid: "0", sdpmLineIndex: 0 });

describe("Viam SignalingService", () => {
  it("fails a Call at once with not_found when no Answer stream is open for the host", async () => {
    const caller = await signaling("alice", uniqueHost());
    const started = Date.now();
    expect(await codeOf(collect(caller.call({ sdp: "offer" })))).toBe(Code.NotFound);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  for (const protocol of ["connect", "connect-json", "grpc-web", "grpc-web-text-json"] as const) {
    it(`relays offer, answer, candidates and done both ways over ${protocol}`, async () => {
      const host = uniqueHost();
      const answerer = await openAnswerer(host);
      await waitOnline(host);
      const caller = await signaling("alice", host, {}, protocol);
      const responses = caller.call({ sdp: "eyJ0eXBlIjoib2ZmZXIifQ==" })[Symbol.asyncIterator]();

      const init = await answerer.next();
      expect(init?.stage.case).toBe("init");
      const uuid = init!.uuid;
      if (init?.stage.case !== "init") throw new Error("no init");
      expect(init.stage.value.sdp).toBe("eyJ0eXBlIjoib2ZmZXIifQ==");
      expect(init.stage.value.optionalConfig?.additionalIceServers[0].urls[0]).toMatch(/^stun:/);
      expect(Number(init.stage.value.deadline!.seconds) * 1000).toBeGreaterThan(Date.now());

      answerer.send({ uuid, stage: { case: "init", value: { sdp: "answer-sdp" } } });
      const first = await responses.next();
      expect(first.value).toMatchObject({ uuid, stage: { case: "init", value: { sdp: "answer-sdp" } } });

      answerer.send({ uuid, stage: { case: "update", value: { candidate: cand(1) } } });
      answerer.send({ uuid, stage: { case: "update", value: { candidate: cand(2) } } });
      const upd1 = await responses.next();
      const upd2 = await responses.next();
      expect(upd1.value?.stage.value).toMatchObject({ candidate: cand(1) });
      expect(upd2.value?.stage.value).toMatchObject({ candidate: cand(2) });

      const callerClient = await signaling("alice", host, {}, protocol);
      await callerClient.callUpdate({ uuid, update: { case: "candidate", value: cand(3) } });
      const hostUpd = await answerer.next();
      expect(hostUpd?.stage.case).toBe("update");
      expect(hostUpd?.stage.value).toMatchObject({ candidate: cand(3) });

      answerer.send({ uuid, stage: { case: "done", value: {} } });
      // Once the answerer is done the Call stream ends with OK (the Viam SDK waits for this).
      expect((await responses.next()).done).toBe(true);

      // The SDK sends its done after the Call stream has ended: still accepted.
      await callerClient.callUpdate({ uuid, update: { case: "done", value: true } });
      expect((await answerer.next())?.stage.case).toBe("done");
      expect(await answerer.next()).toBeNull();
    });
  }

  it("hands an offer to a live Answer stream at once when an older stream has vanished", async () => {
    const host = uniqueHost();
    const vanishing = new AbortController();
    const stale = await openAnswerer(host, {}, vanishing.signal);
    const staleEnd = stale.next().catch(() => null);
    await waitOnline(host);
    // The client goes away mid-wait: its socket to the host object closes with it, so the offer
    // goes to the live stream, not to a wait that nobody reads.
    vanishing.abort();
    await staleEnd;
    const live = await openAnswerer(host);
    const caller = await signaling("alice", host);
    const responses = caller.call({ sdp: "offer" })[Symbol.asyncIterator]();
    const placed = Date.now();

    const init = await live.next();
    expect(init?.stage).toMatchObject({ case: "init", value: { sdp: "offer" } });
    // Well inside the offer deadline; the old long-poll spine needed a 2 s hand-over timeout here.
    expect(Date.now() - placed).toBeLessThan(2_000);
    live.send({ uuid: init!.uuid, stage: { case: "init", value: { sdp: "live-answer" } } });
    expect((await responses.next()).value?.stage.value).toMatchObject({ sdp: "live-answer" });
    live.send({ uuid: init!.uuid, stage: { case: "done", value: {} } });
  });

  it("delivers every queued candidate in order when the call object is reset between two signals", async () => {
    const host = uniqueHost();
    const answerer = await openAnswerer(host);
    await waitOnline(host);
    const caller = await signaling("alice", host);
    const responses = caller.call({ sdp: "offer" })[Symbol.asyncIterator]();
    const init = await answerer.next();
    const uuid = init!.uuid;
    answerer.send({ uuid, stage: { case: "init", value: { sdp: "answer" } } });
    await responses.next();

    for (let i = 0; i < 5; i++) await caller.callUpdate({ uuid, update: { case: "candidate", value: cand(i) } });
    // Reset every object instance (as a deploy does), keeping storage; in-flight polls fail and retry.
    await abortAllDurableObjects();
    for (let i = 5; i < 10; i++) await caller.callUpdate({ uuid, update: { case: "candidate", value: cand(i) } });
    await caller.callUpdate({ uuid, update: { case: "done", value: true } });

    const seen: string[] = [];
    for (let r = await answerer.next(); r && r.stage.case === "update"; r = await answerer.next()) {
      seen.push(r.stage.value.candidate!.candidate);
    }
    expect(seen).toEqual(Array.from({ length: 10 }, (_, i) => cand(i).candidate));
    answerer.send({ uuid, stage: { case: "done", value: {} } });
  });

  it("passes the answerer's error to the caller with the same code", async () => {
    const host = uniqueHost();
    const answerer = await openAnswerer(host);
    await waitOnline(host);
    const caller = await signaling("alice", host);
    const call = collect(caller.call({ sdp: "offer" }));
    const init = await answerer.next();
    answerer.send({ uuid: init!.uuid, stage: { case: "error", value: { status: { code: Code.Aborted, message: "camera busy" } } } });
    const err = await call.then(() => null, (e) => ConnectError.from(e));
    expect(err?.code).toBe(Code.Aborted);
    expect(err?.rawMessage).toBe("camera busy");
  });

  it("tells the answering host when the caller reports an error", async () => {
    const host = uniqueHost();
    const answerer = await openAnswerer(host);
    await waitOnline(host);
    const caller = await signaling("alice", host);
    const responses = caller.call({ sdp: "offer" })[Symbol.asyncIterator]();
    const init = await answerer.next();
    const uuid = init!.uuid;
    answerer.send({ uuid, stage: { case: "init", value: { sdp: "answer" } } });
    await responses.next();
    await caller.callUpdate({ uuid, update: { case: "error", value: { code: Code.Canceled, message: "user gave up" } } });
    const stage = await answerer.next();
    expect(stage?.stage.case).toBe("error");
    expect(stage?.stage.value).toMatchObject({ status: { code: Code.Canceled, message: "user gave up" } });
  });

  it("rejects an answerer update before its init with failed_precondition and fails the caller", async () => {
    const host = uniqueHost();
    const answerer = await openAnswerer(host);
    await waitOnline(host);
    const caller = await signaling("alice", host);
    const call = collect(caller.call({ sdp: "offer" }));
    const init = await answerer.next();
    answerer.send({ uuid: init!.uuid, stage: { case: "update", value: { candidate: cand(1) } } });
    expect(await codeOf(answerer.next())).toBe(Code.FailedPrecondition);
    expect(await codeOf(call)).toBe(Code.FailedPrecondition);
  });

  it("fails the caller when the answering host's stream goes away mid-call", async () => {
    const host = uniqueHost();
    const answerer = await openAnswerer(host);
    await waitOnline(host);
    const caller = await signaling("alice", host);
    const responses = caller.call({ sdp: "offer" })[Symbol.asyncIterator]();
    const init = await answerer.next();
    answerer.send({ uuid: init!.uuid, stage: { case: "init", value: { sdp: "answer" } } });
    await responses.next();
    answerer.close();
    expect(await codeOf(responses.next())).toBe(Code.Unavailable);
  });

  it("fails with deadline_exceeded when an online host does not answer within 10 s", async () => {
    const host = uniqueHost();
    const answerer = await openAnswerer(host);
    await waitOnline(host);
    const caller = await signaling("alice", host);
    const call = collect(caller.call({ sdp: "offer" }));
    expect((await answerer.next())?.stage.case).toBe("init");
    expect(await codeOf(call)).toBe(Code.DeadlineExceeded);
    const stage = await answerer.next();
    expect(stage?.stage.case).toBe("error");
    expect(stage?.stage.value).toMatchObject({ status: { code: Code.DeadlineExceeded } });
  }, 20_000);

  it("sends heartbeat stages every 15 s to a waiting host that allows them, and none to one that does not", async () => {
    const withBeats = await openAnswerer(uniqueHost(), { "heartbeats-allowed": "true" });
    const without = await openAnswerer(uniqueHost());
    const silent = without.next();
    const started = Date.now();
    const beat = await withBeats.next();
    expect(beat?.stage.case).toBe("heartbeat");
    expect(Date.now() - started).toBeGreaterThanOrEqual(14_000);
    const outcome = await Promise.race([silent.then(() => "message"), new Promise((r) => setTimeout(() => r("quiet"), 500))]);
    expect(outcome).toBe("quiet");
  }, 25_000);

  it("answers CallUpdate for an unknown uuid with not_found and a malformed one with invalid_argument", async () => {
    const caller = await signaling("alice", uniqueHost());
    expect(await codeOf(caller.callUpdate({ uuid: crypto.randomUUID(), update: { case: "done", value: true } })))
      .toBe(Code.NotFound);
    expect(await codeOf(caller.callUpdate({ uuid: "not-a-uuid", update: { case: "done", value: true } })))
      .toBe(Code.InvalidArgument);
  });

  it("refuses CallUpdate from an identity that is not the call's caller", async () => {
    const host = uniqueHost();
    const answerer = await openAnswerer(host);
    await waitOnline(host);
    const caller = await signaling("alice", host);
    const call = collect(caller.call({ sdp: "offer" }));
    const uuid = (await answerer.next())!.uuid;
    const mallory = await signaling("mallory", host);
    expect(await codeOf(mallory.callUpdate({ uuid, update: { case: "candidate", value: cand(1) } })))
      .toBe(Code.PermissionDenied);
    answerer.send({ uuid, stage: { case: "error", value: { status: { code: Code.Canceled, message: "bye" } } } });
    await call.catch(() => undefined);
  });

  it("refuses an Answer stream for a host the token's identity is not", async () => {
    const client = await signaling("mallory", "bob");
    const outbox = pushable<AnswerInit>();
    expect(await codeOf(client.answer(outbox)[Symbol.asyncIterator]().next())).toBe(Code.PermissionDenied);
  });

  it("refuses requests without a valid token with unauthenticated", async () => {
    const noToken = clientFor(SignalingService, { "rpc-host": "bob" });
    expect(await codeOf(noToken.optionalWebRTCConfig({}))).toBe(Code.Unauthenticated);
    const expired = clientFor(SignalingService,
      { "rpc-host": "bob", authorization: `Bearer ${await tokenFor("alice", { ttlSeconds: -60 })}` });
    expect(await codeOf(expired.optionalWebRTCConfig({}))).toBe(Code.Unauthenticated);
    const forged = clientFor(SignalingService,
      { "rpc-host": "bob", authorization: `Bearer ${await tokenFor("alice", { secret: "wrong" })}` });
    expect(await codeOf(forged.optionalWebRTCConfig({}))).toBe(Code.Unauthenticated);
  });

  it("requires exactly one rpc-host for Call", async () => {
    const none = await signaling("alice", "");
    expect(await codeOf(collect(none.call({ sdp: "x" })))).toBe(Code.InvalidArgument);
    const two = await signaling("alice", "a,b");
    expect(await codeOf(collect(two.call({ sdp: "x" })))).toBe(Code.InvalidArgument);
  });

  it("offers a Call placed to the second host of an Answer stream's rpc-host to that stream", async () => {
    const [a, b] = [uniqueHost(), uniqueHost()];
    const answerer = await openAnswerer(a,
      { "rpc-host": `${a},${b}`, authorization: `Bearer ${await tokenFor(a, { hosts: [b] })}` });
    await Promise.all([waitOnline(a), waitOnline(b)]);
    const caller = await signaling("alice", b);
    const call = collect(caller.call({ sdp: "offer-to-b" }));
    const init = await answerer.next();
    expect(init?.stage).toMatchObject({ case: "init", value: { sdp: "offer-to-b" } });
    // The stream answers as the host that was called.
    expect(await env.CALLS.getByName(init!.uuid).summary()).toMatchObject({ ok: true, value: { callee: { identity: b } } });
    answerer.send({ uuid: init!.uuid, stage: { case: "error", value: { status: { code: Code.Canceled, message: "bye" } } } });
    expect(await codeOf(call)).toBe(Code.Canceled);
  });

  it("refuses an Answer stream naming a second host its token does not grant", async () => {
    const [a, b] = [uniqueHost(), uniqueHost()];
    const client = await signaling(a, `${a},${b}`);
    expect(await codeOf(client.answer(pushable<AnswerInit>())[Symbol.asyncIterator]().next())).toBe(Code.PermissionDenied);
  });

  for (const count of [2, 3, 4, 5]) {
    it(`accepts ${count} hosts in rpc-host for OptionalWebRTCConfig`, async () => {
      const hosts = Array.from({ length: count }, () => uniqueHost());
      const client = await signaling(hosts[0], hosts.join(","));
      const res = await client.optionalWebRTCConfig({});
      expect(res.config?.additionalIceServers[0].urls).toEqual(["stun:stun.l.google.com:19302"]);
    });
  }

  it("returns STUN servers from OptionalWebRTCConfig", async () => {
    const client = await signaling("alice", "bob");
    const res = await client.optionalWebRTCConfig({});
    expect(res.config?.additionalIceServers[0].urls).toEqual(["stun:stun.l.google.com:19302"]);
  });

  it("records ReportConnectionMetadata", async () => {
    const client = await signaling("alice", "bob");
    await expect(client.reportConnectionMetadata({ durationMs: 120, reachedStage: 7 })).resolves.toBeDefined();
  });

  it("rejects malformed protobuf with invalid_argument over Connect", async () => {
    const res = await postRaw("/proto.rpc.webrtc.v1.SignalingService/CallUpdate", "application/proto",
      new Uint8Array([0x0a, 0xff, 0xff]));
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: "invalid_argument" });
  });

  it("rejects malformed protobuf with invalid_argument over gRPC-web", async () => {
    // One gRPC-web frame (flag 0, length 3) holding a truncated length-delimited field.
    const res = await postRaw("/proto.rpc.webrtc.v1.SignalingService/CallUpdate", "application/grpc-web+proto",
      new Uint8Array([0, 0, 0, 0, 3, 0x0a, 0xff, 0xff]));
    const status = res.headers.get("grpc-status") ?? /grpc-status:\s*(\d+)/.exec(await res.text())?.[1];
    expect(status).toBe(String(Code.InvalidArgument));
  });

  it("rejects a message over the 64 KiB limit with resource_exhausted", async () => {
    const caller = await signaling("alice", uniqueHost());
    expect(await codeOf(collect(caller.call({ sdp: "x".repeat(70 * 1024) })))).toBe(Code.ResourceExhausted);
  });

  it("ends the host's Answer stream with an error stage within the caller-done wait (10 s) when the caller aborts after the host sent answer, candidate and done", async () => {
    const abort = new AbortController();
    const { answerer, responses, uuid } = await placedCall(abort.signal);
    answerer.send({ uuid, stage: { case: "init", value: { sdp: "answer" } } });
    answerer.send({ uuid, stage: { case: "update", value: { candidate: cand(1) } } });
    answerer.send({ uuid, stage: { case: "done", value: {} } });
    expect((await responses.next()).value?.stage.case).toBe("init");
    expect((await responses.next()).value?.stage.case).toBe("update");
    // The tab closes: no CallUpdate(done) ever comes, whether the abort reaches the server before
    // or after the Call stream ended on the host's done.
    const aborted = Date.now();
    abort.abort();
    const stage = await answerer.next();
    expect(stage?.stage.case).toBe("error");
    expect(Date.now() - aborted).toBeLessThan(10_000 + 2_000);
    expect(await answerer.next()).toBeNull();
    const history = (await env.CALLS.getByName(uuid).history()).map((h) => h.status);
    expect(history.at(-1)).toBe("failed");
  });

  it("ends the host's Answer stream with an error stage 10 s after a Call stream that ended on the host's done, when no CallUpdate(done) follows", async () => {
    const { answerer, responses, uuid } = await placedCall();
    answerer.send({ uuid, stage: { case: "init", value: { sdp: "answer" } } });
    answerer.send({ uuid, stage: { case: "done", value: {} } });
    expect((await responses.next()).value?.stage.case).toBe("init");
    expect((await responses.next()).done).toBe(true);
    const ended = Date.now();
    const stage = await answerer.next();
    expect(stage?.stage).toMatchObject({ case: "error", value: { status: { code: Code.Unavailable } } });
    expect(Date.now() - ended).toBeGreaterThanOrEqual(10_000 - 500);
    expect(Date.now() - ended).toBeLessThan(10_000 + 2_000);
  });

  it("ends the host's Answer stream with an error stage at once when the caller's Call stream is cancelled before the host is done", async () => {
    const abort = new AbortController();
    const { answerer, responses, uuid } = await placedCall(abort.signal);
    answerer.send({ uuid, stage: { case: "init", value: { sdp: "answer" } } });
    expect((await responses.next()).value?.stage.case).toBe("init");
    const aborted = Date.now();
    abort.abort();
    const stage = await answerer.next();
    expect(stage?.stage).toMatchObject({ case: "error", value: { status: { code: Code.Unavailable } } });
    // Pushed by the call object when the caller's socket closes: no wait involved.
    expect(Date.now() - aborted).toBeLessThan(10_000);
  });

  it("queues a Call for a host whose answerers are all busy, and hands it to the host's next Answer stream", async () => {
    const host = uniqueHost();
    const first = await openAnswerer(host);
    await waitOnline(host);
    const alice = await signaling("alice", host);
    const busyCall = alice.call({ sdp: "first-offer" })[Symbol.asyncIterator]();
    const busy = await first.next();
    expect(busy?.stage).toMatchObject({ case: "init", value: { sdp: "first-offer" } });
    // Its one answerer is busy: a second Call waits in line instead of failing with not_found.
    const carol = await signaling("carol", host);
    const queued = carol.call({ sdp: "second-offer" })[Symbol.asyncIterator]();
    const answered = queued.next();
    await new Promise((r) => setTimeout(r, 200));
    const second = await openAnswerer(host);
    const init = await second.next();
    expect(init?.stage).toMatchObject({ case: "init", value: { sdp: "second-offer" } });
    second.send({ uuid: init!.uuid, stage: { case: "init", value: { sdp: "second-answer" } } });
    expect((await answered).value?.stage.value).toMatchObject({ sdp: "second-answer" });
    first.send({ uuid: busy!.uuid, stage: { case: "init", value: { sdp: "first-answer" } } });
    expect((await busyCall.next()).value?.stage.value).toMatchObject({ sdp: "first-answer" });
  });

  it("keeps other calls unaffected by a misbehaving answerer", async () => {
    const goodHost = uniqueHost();
    const badHost = uniqueHost();
    const good = await openAnswerer(goodHost);
    const bad = await openAnswerer(badHost);
    await Promise.all([waitOnline(goodHost), waitOnline(badHost)]);
    const alice = await signaling("alice", goodHost);
    const carol = await signaling("carol", badHost);
    const goodCall = alice.call({ sdp: "good-offer" })[Symbol.asyncIterator]();
    const badCall = collect(carol.call({ sdp: "bad-offer" }));
    const goodInit = await good.next();
    const badInit = await bad.next();
    bad.send({ uuid: badInit!.uuid, stage: { case: "done", value: {} } }); // done before init: wrong order
    expect(await codeOf(badCall)).toBe(Code.FailedPrecondition);
    good.send({ uuid: goodInit!.uuid, stage: { case: "init", value: { sdp: "good-answer" } } });
    expect((await goodCall.next()).value?.stage.value).toMatchObject({ sdp: "good-answer" });
  });
});

async function postRaw(path: string, contentType: string, body: Uint8Array) {
  return exports.default.fetch(`http://worker.test${path}`, {
    method: "POST",
    headers: { "content-type": contentType, authorization: `Bearer ${await tokenFor("alice")}`, "rpc-host": "bob" },
    body,
  });
}

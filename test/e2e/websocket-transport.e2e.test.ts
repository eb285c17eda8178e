// The browser path for bidi methods: generated clients over client/websocket-transport.ts
// against wrangler dev, with Node's WHATWG WebSocket (the same API a browser has).
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { asyncQueue } from "../../client/async-queue";
import { createWebSocketTransport } from "../../client/websocket-transport";
import { SignalingService } from "../../proto/gen/proto/rpc/webrtc/v1/signaling_pb";
import { VoiceService } from "../../proto/gen/protocol/voice/v1/voice_pb";
import { baseUrl, tokenFor } from "./server";

const unique = (role: string) => `${role}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

const pushable = asyncQueue;

async function clients(identity: string, host: string) {
  const http = createConnectTransport({ baseUrl, httpVersion: "1.1" });
  const jwt = await tokenFor(identity);
  const ws = createWebSocketTransport({ baseUrl, token: jwt, fallback: http });
  const headers = { authorization: `Bearer ${jwt}`, "rpc-host": host };
  return { ws, http, headers };
}

describe("Connect bidi over WebSocket", () => {
  it("runs VoiceService.Connect with the generated client over the WebSocket transport", async () => {
    const bob = unique("bob");
    const callee = await clients(bob, bob);
    const voice = createClient(VoiceService, callee.ws);
    const outbox = pushable<{ event: { case: "answer"; value: { answer: string } } }>();
    const signals = voice.connect(outbox)[Symbol.asyncIterator]();
    const offer = signals.next();

    const caller = await clients("alice", bob);
    const signaling = createClient(SignalingService, caller.http);
    // The answerer registers a few ms after its socket opens: retry the Call on not_found.
    let call = signaling.call({ sdp: "plain-offer" }, { headers: caller.headers })[Symbol.asyncIterator]();
    let first = call.next();
    for (let i = 0; ; i++) {
      const outcome = await Promise.race([offer.then(() => "offer"), first.then(() => "response", (e: unknown) => e)]);
      if (outcome === "offer") break;
      if (ConnectError.from(outcome).code !== Code.NotFound || i > 50) throw outcome;
      await new Promise((r) => setTimeout(r, 50));
      call = signaling.call({ sdp: "plain-offer" }, { headers: caller.headers })[Symbol.asyncIterator]();
      first = call.next();
    }
    expect((await offer).value).toMatchObject({ event: { case: "offer", value: { offer: "plain-offer" } } });
    outbox.push({ event: { case: "answer", value: { answer: "plain-answer" } } });
    const init = (await first).value!;
    expect(init).toMatchObject({ stage: { case: "init", value: { sdp: "plain-answer" } } });

    outbox.close(); // the Voice client's done: the Call stream ends with OK
    expect((await call.next()).done).toBe(true);
    await signaling.callUpdate({ uuid: init.uuid, update: { case: "done", value: true } }, { headers: caller.headers });
    expect((await signals.next()).done).toBe(true);
  });

  it("hands the Voice stream's response headers (voice-call-id) to the generated client's onHeader", async () => {
    const bob = unique("bob");
    const callee = await clients(bob, bob);
    let header: Headers | undefined;
    const outbox = pushable<{ event: { case: "answer"; value: { answer: string } } }>();
    const signals = createClient(VoiceService, callee.ws)
      .connect(outbox, { onHeader: (h) => { header = h; } })[Symbol.asyncIterator]();
    const offer = signals.next();
    const caller = await clients("alice", bob);
    const signaling = createClient(SignalingService, caller.http);
    // As above: retry the Call until the answerer has registered.
    let first = signaling.call({ sdp: "plain-offer" }, { headers: caller.headers })[Symbol.asyncIterator]().next();
    for (let i = 0; ; i++) {
      const outcome = await Promise.race([offer.then(() => "offer"), first.then(() => "response", (e: unknown) => e)]);
      if (outcome === "offer") break;
      if (ConnectError.from(outcome).code !== Code.NotFound || i > 50) throw outcome;
      await new Promise((r) => setTimeout(r, 50));
      first = signaling.call({ sdp: "plain-offer" }, { headers: caller.headers })[Symbol.asyncIterator]().next();
    }
    await offer;
    outbox.push({ event: { case: "answer", value: { answer: "plain-answer" } } });
    expect(header?.get("voice-call-id")).toBe((await first).value!.uuid);
    outbox.close();
  });

  it("reports a failed stream with the server's Connect code", async () => {
    const alice = await clients("alice", "someone-else");
    const signaling = createClient(SignalingService, alice.ws);
    const outbox = pushable<never>();
    const err = await signaling.answer(outbox, { headers: { "rpc-host": "someone-else" } })[Symbol.asyncIterator]().next()
      .then(() => null, (e) => ConnectError.from(e));
    expect(err?.code).toBe(Code.PermissionDenied);
  });
});

// Requests far over the message size limit over real HTTP/1.1 against wrangler dev: the client
// sends its whole 4 MiB body before it reads, so it gets resource_exhausted only if the Worker
// reads the unread rest of the body instead of leaving the runtime to cut the connection. And
// streams the Worker answers before reading their bodies to the end (refused, or ended by the
// server while the client still sends) leave no body locked to a reader of ours behind, which
// wrangler dev's drain middleware reports as "Failed to drain the unused request body".
import { Code, createClient } from "@connectrpc/connect";
import { encodeEnvelope } from "@connectrpc/connect/protocol";
import { endStreamFlag, endStreamFromJson } from "@connectrpc/connect/protocol-connect";
import { trailerFlag, trailerParse } from "@connectrpc/connect/protocol-grpc-web";
import { createWritableIterable } from "@connectrpc/connect/protocol";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { readFileSync } from "node:fs";
import { describe, expect, inject, it } from "vitest";
import { SignalingService, type AnswerResponseSchema } from "../../proto/gen/proto/rpc/webrtc/v1/signaling_pb";
import { baseUrl, tokenFor } from "./server";
import { codeOf } from "../rpc-outcomes";

const FOUR_MIB = 4 * 1024 * 1024;
const CALL_UPDATE = "/proto.rpc.webrtc.v1.SignalingService/CallUpdate";
const CALL = "/proto.rpc.webrtc.v1.SignalingService/Call";
const ANSWER = "/proto.rpc.webrtc.v1.SignalingService/Answer";
/** What wrangler dev's drain middleware logs when the Worker leaves a request body locked. */
const DRAIN_ERROR = "Failed to drain the unused request body";
/** The middleware logs as the Worker returns its Response; this is ample for the line to reach the log. */
const LOG_SETTLE_MS = 1_000;

const unique = (role: string) => `${role}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

async function headers() {
  return { authorization: `Bearer ${await tokenFor(unique("alice"))}`, "rpc-host": unique("host") };
}

async function post(path: string, contentType: string, body: Uint8Array): Promise<Response> {
  return fetch(`${baseUrl}${path}`, {
    method: "POST",
    body,
    headers: { ...(await headers()), "content-type": contentType, "connect-protocol-version": "1" },
  });
}

/** The one enveloped frame a stream's error answer is, checked to be whole. */
function onlyFrame(body: Uint8Array): { flags: number; data: Uint8Array } {
  const length = new DataView(body.buffer, body.byteOffset).getUint32(1);
  expect(body.byteLength).toBe(5 + length);
  return { flags: body[0], data: body.subarray(5) };
}

const oversizeCandidate = { uuid: crypto.randomUUID(), update: { case: "candidate" as const, value: { candidate: "x".repeat(FOUR_MIB) } } };

describe("a 4 MiB request with Node's fetch", () => {
  it("gets 429 resource_exhausted as Connect JSON", async () => {
    const res = await post(CALL_UPDATE, "application/json", new Uint8Array(FOUR_MIB).fill(0x78));
    expect(res.status).toBe(429);
    expect(await res.json()).toMatchObject({ code: "resource_exhausted" });
  });

  it("gets 429 resource_exhausted as Connect proto", async () => {
    const res = await post(CALL_UPDATE, "application/proto", new Uint8Array(FOUR_MIB));
    expect(res.status).toBe(429);
    expect(await res.json()).toMatchObject({ code: "resource_exhausted" });
  });

  it("gets a whole grpc-status 8 trailer as gRPC-web", async () => {
    const res = await post(CALL_UPDATE, "application/grpc-web+proto", encodeEnvelope(0, new Uint8Array(FOUR_MIB)));
    const frame = onlyFrame(new Uint8Array(await res.arrayBuffer()));
    expect(frame.flags).toBe(trailerFlag);
    expect(trailerParse(frame.data).get("grpc-status")).toBe(String(Code.ResourceExhausted));
  });

  it("gets a whole resource_exhausted end-stream on a Connect server stream", async () => {
    const res = await post(CALL, "application/connect+proto", encodeEnvelope(0, new Uint8Array(FOUR_MIB)));
    const frame = onlyFrame(new Uint8Array(await res.arrayBuffer()));
    expect(frame.flags).toBe(endStreamFlag);
    expect(endStreamFromJson(frame.data).error?.code).toBe(Code.ResourceExhausted);
  });
});

describe("a 4 MiB message from a connect-es client (connect-node, HTTP/1.1)", () => {
  it("gets resource_exhausted for a unary CallUpdate over Connect", async () => {
    const client = createClient(SignalingService, createConnectTransport({ baseUrl, httpVersion: "1.1" }));
    expect(await codeOf(client.callUpdate(oversizeCandidate, { headers: await headers() }))).toBe(Code.ResourceExhausted);
  });

  it("gets resource_exhausted for a unary CallUpdate over gRPC-web", async () => {
    const client = createClient(SignalingService, createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }));
    expect(await codeOf(client.callUpdate(oversizeCandidate, { headers: await headers() }))).toBe(Code.ResourceExhausted);
  });

  it("gets resource_exhausted for a server-streaming Call over Connect", async () => {
    const client = createClient(SignalingService, createConnectTransport({ baseUrl, httpVersion: "1.1" }));
    const call = client.call({ sdp: "x".repeat(FOUR_MIB) }, { headers: await headers() })[Symbol.asyncIterator]();
    expect(await codeOf(call.next())).toBe(Code.ResourceExhausted);
  });
});

/** Drain errors in wrangler dev's log so far. */
const drainErrors = () => readFileSync(inject("serverLog"), "utf8").split(DRAIN_ERROR).length - 1;

/** Drain errors logged since `before`, once the last request's lines had time to arrive. */
async function drainErrorsSince(before: number): Promise<number> {
  await new Promise((r) => setTimeout(r, LOG_SETTLE_MS));
  return drainErrors() - before;
}

/** A Connect streaming request whose body stays open until `end()`; `response` is the whole answer. */
function streamingRequest(path: string, headers: Record<string, string>) {
  let body!: ReadableStreamDefaultController<Uint8Array>;
  const stream = new ReadableStream<Uint8Array>({ start(c) { body = c; c.enqueue(encodeEnvelope(0, new Uint8Array(0))); } });
  const response = fetch(`${baseUrl}${path}`, {
    method: "POST", body: stream, duplex: "half",
    headers: { ...headers, "content-type": "application/connect+proto", "connect-protocol-version": "1" },
  } as RequestInit).then(async (res) => ({ status: res.status, frame: onlyFrame(new Uint8Array(await res.arrayBuffer())) }));
  return { response, end: () => { try { body.close(); } catch { /* already closed */ } } };
}

// wrangler dev's middleware looks at the body as soon as the Worker returns its Response: whether
// connect had begun reading by then decides it for the first and last cases (seen both ways before
// the fix); a bidi stream refused before its first read is reported every time.
describe("a stream answered before its request body ends", () => {
  it("leaves no locked body when a server stream is refused unauthenticated", async () => {
    const before = drainErrors();
    const res = await fetch(`${baseUrl}${CALL}`, {
      method: "POST", body: encodeEnvelope(0, new Uint8Array(0)),
      headers: { "rpc-host": unique("host"), "content-type": "application/connect+proto", "connect-protocol-version": "1" },
    });
    const frame = onlyFrame(new Uint8Array(await res.arrayBuffer()));
    expect(endStreamFromJson(frame.data).error?.code).toBe(Code.Unauthenticated);
    expect(await drainErrorsSince(before)).toBe(0);
  });

  it("leaves no locked body when an Answer stream is refused unauthenticated while its body is open", async () => {
    const before = drainErrors();
    const request = streamingRequest(ANSWER, { "rpc-host": unique("host") });
    const { frame } = await request.response;
    request.end();
    expect(endStreamFromJson(frame.data).error?.code).toBe(Code.Unauthenticated);
    expect(await drainErrorsSince(before)).toBe(0);
  });

  it("leaves no locked body when the server ends an Answer stream whose body is still open", async () => {
    const before = drainErrors();
    const host = unique("host");
    const transport = createConnectTransport({ baseUrl, httpVersion: "1.1" });
    const signaling = createClient(SignalingService, transport);
    const outbound = createWritableIterable<MessageInitShape<typeof AnswerResponseSchema>>();
    const answering = (async () => {
      const headers = { authorization: `Bearer ${await tokenFor(host)}`, "rpc-host": host };
      for await (const req of signaling.answer(outbound, { headers })) {
        if (req.stage.case !== "init") continue;
        await outbound.write({ uuid: req.uuid, stage: { case: "init", value: { sdp: "answer" } } });
        await outbound.write({ uuid: req.uuid, stage: { case: "done", value: {} } });
      }
    })();
    const callerHeaders = { authorization: `Bearer ${await tokenFor(unique("caller"))}`, "rpc-host": host };
    let uuid = "";
    for (let attempt = 0; !uuid; attempt++) {
      try {
        for await (const res of signaling.call({ sdp: "offer" }, { headers: callerHeaders })) uuid ||= res.uuid;
      } catch (err) {
        // The Answer stream registers a few ms after it opens: not_found until then.
        if (attempt > 50) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await signaling.callUpdate({ uuid, update: { case: "done", value: true } }, { headers: callerHeaders });
    await answering; // the server ended the Answer stream; the host's body is still open
    outbound.close();
    expect(await drainErrorsSince(before)).toBe(0);
  });
});

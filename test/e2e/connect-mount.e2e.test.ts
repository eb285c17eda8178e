// Requests far over the message size limit over real HTTP/1.1 against wrangler dev: the client
// sends its whole 4 MiB body before it reads, so it gets resource_exhausted only if the Worker
// reads the unread rest of the body instead of leaving the runtime to cut the connection.
import { Code, createClient } from "@connectrpc/connect";
import { encodeEnvelope } from "@connectrpc/connect/protocol";
import { endStreamFlag, endStreamFromJson } from "@connectrpc/connect/protocol-connect";
import { trailerFlag, trailerParse } from "@connectrpc/connect/protocol-grpc-web";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { SignalingService } from "../../proto/gen/proto/rpc/webrtc/v1/signaling_pb";
import { baseUrl, tokenFor } from "./server";
import { codeOf } from "../rpc-outcomes";

const FOUR_MIB = 4 * 1024 * 1024;
const CALL_UPDATE = "/proto.rpc.webrtc.v1.SignalingService/CallUpdate";
const CALL = "/proto.rpc.webrtc.v1.SignalingService/Call";

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

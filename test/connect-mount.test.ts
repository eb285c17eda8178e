// The Connect mount (worker/connect-mount.ts) answering requests far over the message size limit:
// a complete error in the request's own protocol, with the request body read to its end (or, past
// the drain bound, cancelled), so the runtime never has to cut the connection to be rid of it.
import { Code, ConnectError } from "@connectrpc/connect";
import { encodeEnvelope } from "@connectrpc/connect/protocol";
import { endStreamFlag, endStreamFromJson, errorFromJsonBytes } from "@connectrpc/connect/protocol-connect";
import { trailerFlag, trailerParse } from "@connectrpc/connect/protocol-grpc-web";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { unique } from "./door-clients";
import { tokenFor } from "./tokens";

const FOUR_MIB = 4 * 1024 * 1024;
const SIXTEEN_MIB = 16 * 1024 * 1024;
const CALL_UPDATE = "/proto.rpc.webrtc.v1.SignalingService/CallUpdate";
const CALL = "/proto.rpc.webrtc.v1.SignalingService/Call";
const VOICE_CONNECT = "/protocol.voice.v1.VoiceService/Connect";

/** An oversize body as a stream that counts what the Worker pulled from it and sees a cancel. */
function countedBody(bytes: Uint8Array, chunkBytes = 64 * 1024) {
  const seen = { pulled: 0, cancelled: false };
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (seen.pulled >= bytes.byteLength) return controller.close();
      const chunk = bytes.subarray(seen.pulled, seen.pulled + chunkBytes);
      seen.pulled += chunk.byteLength;
      controller.enqueue(chunk);
    },
    cancel() {
      seen.cancelled = true;
    },
  });
  return { stream, seen };
}

async function post(path: string, contentType: string, body: BodyInit): Promise<Response> {
  return exports.default.fetch(`http://worker.test${path}`, {
    method: "POST",
    body,
    headers: {
      "content-type": contentType,
      "connect-protocol-version": "1",
      authorization: `Bearer ${await tokenFor(unique("alice"))}`,
      "rpc-host": unique("host"),
    },
  });
}

/** The one enveloped frame a stream's error answer is, checked to be whole: flags and data. */
function onlyFrame(body: Uint8Array): { flags: number; data: Uint8Array } {
  expect(body.byteLength).toBeGreaterThanOrEqual(5);
  const length = new DataView(body.buffer, body.byteOffset).getUint32(1);
  expect(body.byteLength).toBe(5 + length);
  return { flags: body[0], data: body.subarray(5) };
}

const oversizeMessage = () => encodeEnvelope(0, new Uint8Array(FOUR_MIB).fill(0x78));

describe("a Connect request far over the message size limit", () => {
  it("answers a 4 MiB Connect JSON CallUpdate with 429 and a complete resource_exhausted error", async () => {
    const res = await post(CALL_UPDATE, "application/json", new Uint8Array(FOUR_MIB).fill(0x78));
    expect(res.status).toBe(429);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const error = errorFromJsonBytes(new Uint8Array(await res.arrayBuffer()), undefined, new ConnectError("no error", Code.Unknown));
    expect(error.code).toBe(Code.ResourceExhausted);
    expect(error.rawMessage).toContain("65536");
  });

  it("answers a 4 MiB Connect proto CallUpdate with 429 and a complete resource_exhausted error", async () => {
    const res = await post(CALL_UPDATE, "application/proto", new Uint8Array(FOUR_MIB));
    expect(res.status).toBe(429);
    // Connect unary errors are JSON whatever the request's codec.
    const error = errorFromJsonBytes(new Uint8Array(await res.arrayBuffer()), undefined, new ConnectError("no error", Code.Unknown));
    expect(error.code).toBe(Code.ResourceExhausted);
  });

  it("answers a 4 MiB gRPC-web CallUpdate with one whole trailer frame carrying grpc-status 8", async () => {
    const res = await post(CALL_UPDATE, "application/grpc-web+proto", oversizeMessage());
    expect(res.status).toBe(200);
    const frame = onlyFrame(new Uint8Array(await res.arrayBuffer()));
    expect(frame.flags).toBe(trailerFlag);
    expect(trailerParse(frame.data).get("grpc-status")).toBe(String(Code.ResourceExhausted));
  });

  it("ends a Connect server stream whose 4 MiB message is over the limit with a whole resource_exhausted end-stream", async () => {
    const res = await post(CALL, "application/connect+proto", oversizeMessage());
    expect(res.status).toBe(200);
    const frame = onlyFrame(new Uint8Array(await res.arrayBuffer()));
    expect(frame.flags).toBe(endStreamFlag);
    expect(endStreamFromJson(frame.data).error?.code).toBe(Code.ResourceExhausted);
  });

  it("ends a gRPC-web server stream whose 4 MiB message is over the limit with a whole grpc-status 8 trailer", async () => {
    const res = await post(CALL, "application/grpc-web+proto", oversizeMessage());
    const frame = onlyFrame(new Uint8Array(await res.arrayBuffer()));
    expect(frame.flags).toBe(trailerFlag);
    expect(trailerParse(frame.data).get("grpc-status")).toBe(String(Code.ResourceExhausted));
  });
});

describe("the unread rest of an oversize request body", () => {
  it("is read to its end before a unary answer is sent", async () => {
    const { stream, seen } = countedBody(new Uint8Array(FOUR_MIB));
    const res = await post(CALL_UPDATE, "application/json", stream);
    expect(res.status).toBe(429);
    expect(seen).toEqual({ pulled: FOUR_MIB, cancelled: false });
  });

  it("is read to its end before a server stream's end-stream is sent, with no content-length either", async () => {
    const message = oversizeMessage();
    const { stream, seen } = countedBody(message);
    const res = await post(CALL, "application/connect+proto", stream);
    expect(endStreamFromJson(onlyFrame(new Uint8Array(await res.arrayBuffer())).data).error?.code).toBe(Code.ResourceExhausted);
    expect(seen).toEqual({ pulled: message.byteLength, cancelled: false });
  });

  it("is cancelled, not read, past 16 MiB", async () => {
    const { stream, seen } = countedBody(new Uint8Array(SIXTEEN_MIB + FOUR_MIB), 1024 * 1024);
    const res = await post(CALL_UPDATE, "application/json", stream);
    expect(res.status).toBe(429);
    expect(await res.json()).toMatchObject({ code: "resource_exhausted" });
    expect(seen.pulled).toBeLessThan(SIXTEEN_MIB + FOUR_MIB);
    await expect.poll(() => seen.cancelled).toBe(true);
  });

  it("of a bidi stream without content-length is cancelled once the answer has ended, not waited for", async () => {
    const { stream, seen } = countedBody(oversizeMessage());
    const res = await post(VOICE_CONNECT, "application/connect+proto", stream);
    const frame = onlyFrame(new Uint8Array(await res.arrayBuffer()));
    expect(endStreamFromJson(frame.data).error?.code).toBe(Code.ResourceExhausted);
    await expect.poll(() => seen.cancelled).toBe(true);
  });
});

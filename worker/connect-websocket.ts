// Connect streaming methods over a WebSocket, for browsers: fetch() in a browser cannot send a
// request body while reading the response, so bidi methods cannot run over HTTP there.
//
// Wire format (client/websocket-transport.ts speaks it):
// - `GET /ws/<package.Service>/<Method>` upgrades; the token comes as `?access_token=` and the
//   headers a door reads (rpc-host, voice-call-id, heartbeats-allowed) as query parameters of
//   the same name, because browsers cannot set headers on a WebSocket.
// - Every binary message is exactly one Connect envelope (flags u8, length u32 big-endian, data).
//   The client sends request messages (flags 0) and one empty end-stream envelope (flags 2) when
//   it has nothing more to send. The server sends response messages and, last, the Connect
//   end-stream envelope (JSON, with the error if any), then closes with 1000.
// - Response headers a handler set itself (Voice's voice-call-id) come first, in one envelope with
//   flags 0x40 (no Connect flag) holding a JSON object; it is sent only when there are such headers.
import { Code, ConnectError } from "@connectrpc/connect";
import { createEnvelopeReadableStream, encodeEnvelope, type UniversalHandler } from "@connectrpc/connect/protocol";
import { endStreamFlag, endStreamToJson } from "@connectrpc/connect/protocol-connect";
import type { Context } from "hono";
import { asyncQueue } from "../client/async-queue";
import { contextValuesFor } from "./connect-mount";
import type { AppEnv } from "./env";
import { MAX_RPC_MESSAGE_BYTES } from "../model/limits";
import { MESSAGE_TOO_BIG, NORMAL_CLOSURE, PROTOCOL_ERROR, UNSUPPORTED_DATA } from "../model/close-codes";

/** Request headers a browser may pass as query parameters (nothing that changes the protocol). */
const FORWARDED_PARAMS = ["rpc-host", "voice-call-id", "heartbeats-allowed", "connect-timeout-ms"];

const ENVELOPE_HEADER_BYTES = 5;

/** Flag of the envelope carrying response headers (client/websocket-transport.ts reads it). */
const RESPONSE_HEADERS_FLAG = 0b0100_0000;
/** Headers about the Connect protocol itself stay on this side; the rest reach the client. */
const PROTOCOL_HEADER = /^(content-type|content-encoding|connect-.*|grpc-.*)$/i;

export function connectOverWebSocket(handlers: UniversalHandler[]) {
  const streaming = new Map(handlers
    .filter((h) => h.method.methodKind !== "unary")
    .map((h) => [h.requestPath, h] as const));

  return (c: Context<AppEnv>) => {
    const handler = streaming.get(`/${c.req.param("service")}/${c.req.param("method")}`);
    if (!handler) return c.json({ code: "not_found", message: "no streaming method at this path" }, 404);
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      return c.json({ code: "failed_precondition", message: "expected a WebSocket upgrade" }, 426);
    }
    const url = new URL(c.req.url);
    const header = new Headers({ "content-type": "application/connect+proto", "connect-protocol-version": "1" });
    const token = url.searchParams.get("access_token");
    if (token) header.set("authorization", `Bearer ${token}`);
    for (const name of FORWARDED_PARAMS) {
      const value = url.searchParams.get(name);
      if (value !== null) header.set(name, value);
    }

    const { 0: client, 1: socket } = new WebSocketPair();
    socket.accept();
    const abort = new AbortController();
    const requestBody = requestEnvelopes(socket, abort);
    const done = (async () => {
      const res = await handler({
        httpVersion: "2", method: "POST", url: c.req.url, header, body: requestBody, signal: abort.signal,
        contextValues: contextValuesFor(c.env),
      });
      if (res.status !== 200 || !res.body) {
        sendEnd(socket, new ConnectError(`HTTP ${res.status}`, res.status === 415 ? Code.Internal : Code.Unknown));
        return;
      }
      const own = [...new Headers(res.header)].filter(([name]) => !PROTOCOL_HEADER.test(name));
      if (own.length && socket.readyState === WebSocket.OPEN) {
        socket.send(encodeEnvelope(RESPONSE_HEADERS_FLAG, new TextEncoder().encode(JSON.stringify(Object.fromEntries(own)))));
      }
      const chunks = res.body[Symbol.asyncIterator]();
      const envelopes = createEnvelopeReadableStream(new ReadableStream<Uint8Array>({
        async pull(ctrl) {
          const r = await chunks.next();
          if (r.done) ctrl.close(); else ctrl.enqueue(r.value);
        },
      }));
      for await (const envelope of envelopes as unknown as AsyncIterable<{ flags: number; data: Uint8Array }>) {
        if (socket.readyState !== WebSocket.OPEN) break;
        socket.send(encodeEnvelope(envelope.flags, envelope.data));
      }
      if (socket.readyState === WebSocket.OPEN) socket.close(NORMAL_CLOSURE, "stream ended");
    })().catch((err: unknown) => {
      console.error("connect-over-websocket failed", { path: url.pathname, err: String(err) });
      sendEnd(socket, new ConnectError("internal error", Code.Internal));
    });
    c.executionCtx.waitUntil(done);
    return new Response(null, { status: 101, webSocket: client });
  };
}

/** The client's envelopes as the byte stream a Connect handler reads; ends at its end-stream. */
function requestEnvelopes(socket: WebSocket, abort: AbortController): AsyncIterable<Uint8Array> {
  const envelopes = asyncQueue<Uint8Array>();
  // Messages are handled strictly in arrival order, even when one arrives as a Blob.
  let order = Promise.resolve();
  socket.addEventListener("message", (event) => {
    order = order.then(async () => {
      if (typeof event.data === "string") {
        socket.close(UNSUPPORTED_DATA, "binary Connect envelopes only");
        return envelopes.close();
      }
      const frame = readRequestFrame(await bytesOf(event.data));
      if (frame.kind === "refused") socket.close(frame.code, frame.reason);
      if (frame.kind === "message") envelopes.push(frame.envelope); else envelopes.close();
    });
  });
  socket.addEventListener("close", () => {
    abort.abort(new ConnectError("client closed the WebSocket", Code.Canceled));
    envelopes.close();
  });
  return envelopes;
}

export type RequestFrame =
  | { kind: "message"; envelope: Uint8Array }
  | { kind: "end" }
  | { kind: "refused"; code: typeof PROTOCOL_ERROR | typeof MESSAGE_TOO_BIG; reason: string };

/**
 * What one binary WebSocket message from the client is: a request envelope for the handler, the
 * client's end-stream, or a frame that closes the socket. A message must be exactly one envelope:
 * its length field must name the rest of the message, or the envelope reader behind it would join
 * it with the next message (or wait for bytes that never come).
 */
export function readRequestFrame(bytes: Uint8Array): RequestFrame {
  if (bytes.length < ENVELOPE_HEADER_BYTES) return { kind: "refused", code: PROTOCOL_ERROR, reason: "one Connect envelope per message" };
  if (bytes.length > MAX_RPC_MESSAGE_BYTES + ENVELOPE_HEADER_BYTES) {
    return { kind: "refused", code: MESSAGE_TOO_BIG, reason: `envelope larger than ${MAX_RPC_MESSAGE_BYTES} bytes` };
  }
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(1);
  if (length !== bytes.length - ENVELOPE_HEADER_BYTES) {
    return { kind: "refused", code: PROTOCOL_ERROR, reason: "envelope length does not match the message" };
  }
  if (bytes[0] & endStreamFlag) return { kind: "end" };
  return { kind: "message", envelope: bytes };
}

async function bytesOf(data: unknown): Promise<Uint8Array> {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof Blob) return new Uint8Array(await data.arrayBuffer());
  return new Uint8Array(0);
}

function sendEnd(socket: WebSocket, error: ConnectError): void {
  if (socket.readyState !== WebSocket.OPEN) return;
  const json = JSON.stringify(endStreamToJson(new Headers(), error, undefined));
  socket.send(encodeEnvelope(endStreamFlag, new TextEncoder().encode(json)));
  socket.close(NORMAL_CLOSURE, "stream ended");
}

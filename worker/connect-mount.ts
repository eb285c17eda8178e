// Mounts a Connect router's universal handlers on Hono routes (there is no ready-made Hono
// adapter): Connect, gRPC-web and their JSON variants, with the Worker's env in context values.
import { Code, createConnectRouter, createContextValues, type ConnectRouter } from "@connectrpc/connect";
import { universalServerResponseToFetch, type UniversalHandler } from "@connectrpc/connect/protocol";
import type { Hono } from "hono";
import { envKey } from "./connect-context";
import { publicErrors } from "./connect-errors";
import type { AppEnv } from "./env";
import { MAX_DRAINED_REQUEST_BYTES, MAX_RPC_MESSAGE_BYTES, MAX_RPC_TIMEOUT_MS } from "../model/limits";

/**
 * connect's protocol negotiation refuses bidi streams when told the request is HTTP/1.x,
 * because most HTTP/1.1 servers cannot stream a response while the request body is still
 * arriving. workerd can (locally over HTTP/1.1 too; at the edge clients speak HTTP/2), so the
 * handlers are told the capability that matters: full duplex.
 */
const FULL_DUPLEX_HTTP_VERSION = "2";

export function createRouter(routes: (router: ConnectRouter) => void): ConnectRouter {
  const router = createConnectRouter({
    // Native gRPC needs HTTP trailers, which a Worker cannot send; Connect and gRPC-web cannot.
    grpc: false,
    grpcWeb: true,
    connect: true,
    readMaxBytes: MAX_RPC_MESSAGE_BYTES,
    writeMaxBytes: MAX_RPC_MESSAGE_BYTES,
    maxTimeoutMs: MAX_RPC_TIMEOUT_MS,
    interceptors: [publicErrors],
  });
  routes(router);
  return router;
}

export function contextValuesFor(env: Env) {
  return createContextValues().set(envKey, env);
}

/** Runs one universal handler for a fetch Request. */
export async function serveConnect(handler: UniversalHandler, request: Request, env: Env): Promise<Response> {
  const body = requestBody(request, handler.method.methodKind !== "bidi_streaming");
  const uRes = await handler({
    httpVersion: FULL_DUPLEX_HTTP_VERSION,
    method: request.method,
    url: request.url,
    header: request.headers,
    body: body.chunks,
    signal: request.signal,
    contextValues: contextValuesFor(env),
  });
  const res = universalServerResponseToFetch(uRes);
  if (handler.method.methodKind !== "unary" && res.body !== null) return endingAfterSettle(res, body);
  // A unary answer is complete once the handler returns: settle the body before it is sent.
  try {
    return await parseErrorsAsInvalidArgument(handler, res);
  } finally {
    await body.settle();
  }
}

interface RequestBody {
  /** The body as connect reads it. */
  chunks: AsyncIterable<Uint8Array>;
  /** Reads what connect left of the body and drops it, or cancels the body (see requestBody). */
  settle(): Promise<void>;
}

/**
 * The request body, read through one reader of ours. connect-es stops reading at a message over
 * readMaxBytes (for unary, before reading at all when content-length is over) and answers at
 * once, leaving the rest unread and the stream locked to its reader; workerd then closes the
 * connection with the client's bytes still arriving, and an HTTP/1.1 client, which sends its
 * whole body before it reads, gets a cut-off answer instead of the error. So the rest is read and
 * dropped (up to MAX_DRAINED_REQUEST_BYTES) before the answer ends, when the client is sure to
 * stop sending: a content-length says when it will, and so does any kind of method but bidi (its
 * client sends one message, or a finite list, and ends its body). A bidi client without a
 * content-length may be waiting for our end of stream before it ends its own, so its body is
 * cancelled instead, as an HTTP/2 server resets a stream whose response is complete (RFC 9113 §8.1).
 */
function requestBody(request: Request, endsOnItsOwn: boolean): RequestBody {
  const reader = request.body?.getReader();
  // The first read starts now, before connect asks: a body with a read begun is `bodyUsed`, and so
  // belongs to this mount from the start. wrangler dev wraps the Worker in a middleware that, once
  // the Worker has returned its Response (for a stream that is when it begins, not when it ends),
  // drains any body not `bodyUsed` with a reader of its own; on a body we hold locked but have not
  // read from yet (a stream refused before its first message, a bidi stream whose first read is
  // still to come) it failed with "Failed to drain the unused request body … locked to a reader".
  let ahead = reader?.read();
  ahead?.catch(() => undefined); // the client going away is seen by the read that takes it over
  const declared = Number(request.headers.get("content-length") ?? Number.NaN);
  let finished = reader === undefined;
  let received = 0;
  async function next(): Promise<IteratorResult<Uint8Array, undefined>> {
    if (finished) return { done: true, value: undefined };
    const read = ahead ?? reader!.read();
    ahead = undefined;
    const chunk = await read;
    if (chunk.done) {
      finished = true;
      return { done: true, value: undefined };
    }
    received += chunk.value.byteLength;
    return chunk;
  }
  async function cancel(reason?: unknown) {
    if (finished) return;
    finished = true;
    await reader!.cancel(reason).catch(() => undefined);
  }
  return {
    // connect calls throw() to stop reading early; as in its own fetch adapter, that cancels the
    // body, so a read the handler is blocked in ends.
    chunks: {
      [Symbol.asyncIterator]: () => ({
        next,
        async throw(reason?: unknown) {
          await cancel(reason);
          return { done: true, value: undefined };
        },
      }),
    },
    async settle() {
      const drain = Number.isFinite(declared) ? declared <= MAX_DRAINED_REQUEST_BYTES : endsOnItsOwn;
      try {
        while (drain && !finished && received <= MAX_DRAINED_REQUEST_BYTES) await next();
      } catch {
        // The client went away mid-body: nothing is left to answer, nor to drain.
      }
      await cancel();
    },
  };
}

/** A streaming response whose end waits for the request body to be settled. */
function endingAfterSettle(res: Response, body: RequestBody): Response {
  const source = res.body!.getReader();
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const chunk = await source.read();
      if (cancelled) return;
      if (!chunk.done) return controller.enqueue(chunk.value);
      await body.settle();
      controller.close();
    },
    // The client went away: its stream ends as connect's own fetch adapter ends it, body untouched
    // by us, so the handler sees the same disconnect it always has.
    cancel(reason) {
      cancelled = true;
      return source.cancel(reason);
    },
  });
  return new Response(stream, res);
}

const PARSE_ERROR = /^parse (binary|json)/;
const GRPC_WEB_TRAILER = 0x80;

/**
 * connect-es reports a request it cannot decode as `internal`, as grpc-go does. For a signaling
 * service that is the client's fault, not the server's: answer `invalid_argument`, so clients do
 * not retry it and operators are not paged for it. Only unary responses are looked at (their
 * bodies are one small message or error); streams map decode errors where they read input.
 */
async function parseErrorsAsInvalidArgument(handler: UniversalHandler, res: Response): Promise<Response> {
  if (handler.method.methodKind !== "unary") return res;
  const type = res.headers.get("content-type") ?? "";
  if (res.status === 500 && type.startsWith("application/json")) {
    const error = JSON.parse(await res.text()) as { code?: string; message?: string };
    const code = error.code === "internal" && PARSE_ERROR.test(error.message ?? "") ? "invalid_argument" : error.code;
    return new Response(JSON.stringify({ ...error, code }), { status: code === error.code ? 500 : 400, headers: res.headers });
  }
  if (!type.startsWith("application/grpc-web")) return res;
  const body = new Uint8Array(await res.arrayBuffer());
  if (body[0] !== GRPC_WEB_TRAILER) return new Response(body, res);
  const trailer = new TextDecoder().decode(body.subarray(5));
  const message = /grpc-message:\s*([^\r\n]*)/i.exec(trailer)?.[1] ?? "";
  if (!/grpc-status:\s*13\b/i.test(trailer) || !PARSE_ERROR.test(decodeURIComponent(message))) {
    return new Response(body, res);
  }
  const rewritten = new TextEncoder().encode(trailer.replace(/grpc-status:\s*13\b/i, `grpc-status: ${Code.InvalidArgument}`));
  const frame = new Uint8Array(5 + rewritten.length);
  frame[0] = GRPC_WEB_TRAILER;
  new DataView(frame.buffer).setUint32(1, rewritten.length);
  frame.set(rewritten, 5);
  return new Response(frame, res);
}
export function mountConnect(app: Hono<AppEnv>, router: ConnectRouter): void {
  for (const handler of router.handlers) {
    app.on(handler.allowedMethods, handler.requestPath, (c) => serveConnect(handler, c.req.raw, c.env));
  }
}

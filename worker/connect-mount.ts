// Mounts a Connect router's universal handlers on Hono routes (there is no ready-made Hono
// adapter): Connect, gRPC-web and their JSON variants, with the Worker's env in context values.
import { Code, createConnectRouter, createContextValues, type ConnectRouter } from "@connectrpc/connect";
import { universalServerRequestFromFetch, universalServerResponseToFetch, type UniversalHandler } from "@connectrpc/connect/protocol";
import type { Hono } from "hono";
import { envKey } from "./connect-context";
import { publicErrors } from "./connect-errors";
import type { AppEnv, Env } from "./env";
import { MAX_RPC_MESSAGE_BYTES, MAX_RPC_TIMEOUT_MS } from "./limits";

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
  const uReq = universalServerRequestFromFetch(request, { httpVersion: FULL_DUPLEX_HTTP_VERSION });
  const uRes = await handler({ ...uReq, contextValues: contextValuesFor(env) });
  return parseErrorsAsInvalidArgument(handler, universalServerResponseToFetch(uRes));
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

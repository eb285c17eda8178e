// Mounts a Connect router's universal handlers on Hono routes (there is no ready-made Hono
// adapter): Connect, gRPC-web and their JSON variants, with the Worker's env in context values.
import { createConnectRouter, createContextValues, type ConnectRouter } from "@connectrpc/connect";
import { universalServerRequestFromFetch, universalServerResponseToFetch, type UniversalHandler } from "@connectrpc/connect/protocol";
import type { Hono } from "hono";
import { envKey } from "./connect-context";
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
  return universalServerResponseToFetch(uRes);
}

export function mountConnect(app: Hono<AppEnv>, router: ConnectRouter): void {
  for (const handler of router.handlers) {
    app.on(handler.allowedMethods, handler.requestPath, (c) => serveConnect(handler, c.req.raw, c.env));
  }
}

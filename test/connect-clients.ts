// Generated Connect clients talking to the real Worker over its fetch handler, in the Workers
// runtime. Streaming request bodies let bidi methods run full duplex, as they do over HTTP.
import type { DescService } from "@bufbuild/protobuf";
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createFetchClient } from "@connectrpc/connect/protocol";
import { createTransport as createConnect } from "@connectrpc/connect/protocol-connect";
import { createTransport as createGrpcWeb } from "@connectrpc/connect/protocol-grpc-web";
import { exports } from "cloudflare:workers";
import { asyncQueue } from "../client/async-queue";

export type Protocol = "connect" | "connect-json" | "grpc-web" | "grpc-web-text-json";

/** How a transport reaches the Worker: its fetch handler as deployed, or `app.fetch` with another env. */
export type WorkerFetch = (req: Request) => Response | Promise<Response>;
const deployedWorker: WorkerFetch = (req) => exports.default.fetch(req);

export function workerTransport(protocol: Protocol = "connect", headers: Record<string, string> = {},
  fetch: WorkerFetch = deployedWorker) {
  const addHeaders: Interceptor = (next) => (req) => {
    for (const [k, v] of Object.entries(headers)) req.header.set(k, v);
    return next(req);
  };
  const options = {
    // connect-es hands its fetch function a Request (universalClientRequestToFetch).
    httpClient: createFetchClient(async (req) => fetch(req as Request)),
    baseUrl: "http://worker.test",
    useBinaryFormat: protocol === "connect" || protocol === "grpc-web",
    interceptors: [addHeaders],
    acceptCompression: [],
    sendCompression: null,
    compressMinBytes: 1024,
    readMaxBytes: 1 << 20,
    writeMaxBytes: 1 << 20,
  };
  return protocol.startsWith("connect") ? createConnect(options) : createGrpcWeb(options);
}

export function clientFor<S extends DescService>(service: S, headers: Record<string, string>,
  protocol: Protocol = "connect", fetch?: WorkerFetch): Client<S> {
  return createClient(service, workerTransport(protocol, headers, fetch));
}

/** A pushable async iterable: the request side of a bidi stream a test writes to over time. */
export const pushable = asyncQueue;

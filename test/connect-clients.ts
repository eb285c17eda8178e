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

export function workerTransport(protocol: Protocol = "connect", headers: Record<string, string> = {}) {
  const addHeaders: Interceptor = (next) => (req) => {
    for (const [k, v] of Object.entries(headers)) req.header.set(k, v);
    return next(req);
  };
  const options = {
    httpClient: createFetchClient((req) => exports.default.fetch(req)),
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
  protocol: Protocol = "connect"): Client<S> {
  return createClient(service, workerTransport(protocol, headers));
}

/** A pushable async iterable: the request side of a bidi stream a test writes to over time. */
export const pushable = asyncQueue;

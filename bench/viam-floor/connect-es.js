// Experiment "floor + connect-es" (bench/viam-floor-bench.mjs EXPERIMENTS.connectEs): the
// Viam-shaped floor with its Connect framing done by the library this Worker's doors use, and
// nothing else changed. Same objects (worker.js's Host, one per host, reached over the same
// hibernatable sockets and the same `update` RPC), same routing, no auth, storage or object per
// call; only the hand-written envelopes and field reading are replaced by connect-es and
// protobuf-es: a router made once with createConnectRouter, the generated SignalingService, and
// connect-es's own fetch adapter (universalServerRequestFromFetch / universalServerResponseToFetch),
// as in connectrpc/examples-es' Cloudflare Workers example. The bytes between Worker and object are
// the floor's: AnswerRequest and AnswerResponse (= CallResponse) messages, "end", or a JSON error.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createConnectRouter, createContextKey, createContextValues } from "@connectrpc/connect";
import { universalServerRequestFromFetch, universalServerResponseToFetch } from "@connectrpc/connect/protocol";
import {
  AnswerRequestSchema, AnswerResponseSchema, CallResponseSchema, CallUpdateRequestSchema, SignalingService,
} from "../../proto/gen/proto/rpc/webrtc/v1/signaling_pb";

export { CallRoom, Host } from "./worker.js";

const envKey = createContextKey(undefined, { description: "the Worker's env" });

async function socketTo(env, host, query) {
  const res = await env.HOST.getByName(host).fetch(`https://object/socket?${query}`, { headers: { upgrade: "websocket" } });
  const ws = res.webSocket;
  if (!ws) throw new ConnectError(`the host's object refused the socket (${res.status})`, Code.Unavailable);
  ws.binaryType = "arraybuffer";
  ws.accept();
  return ws;
}

/** The object's messages on `ws` until it says the stream ended: binary ones decoded as `schema`. */
async function* messagesFrom(ws, schema) {
  const queue = [];
  let wake = null;
  let closed = false;
  ws.addEventListener("message", (e) => { queue.push(e.data); wake?.(); });
  ws.addEventListener("close", () => { closed = true; wake?.(); });
  try {
    for (;;) {
      while (queue.length) {
        const m = queue.shift();
        if (typeof m !== "string") yield fromBinary(schema, new Uint8Array(m));
        else if (m === "end") return;
        else throw new ConnectError(JSON.parse(m).message, Code.Unknown);
      }
      if (closed) throw new ConnectError("the object closed the stream", Code.Unavailable);
      await new Promise((resolve) => { wake = resolve; });
      wake = null;
    }
  } finally {
    try { ws.close(1000, "stream ended"); } catch { /* closed */ }
  }
}

function hostOf(ctx) {
  const host = ctx.requestHeader.get("rpc-host");
  if (!host) throw new ConnectError("rpc-host header is required", Code.InvalidArgument);
  return host;
}

const router = createConnectRouter({ connect: true, grpcWeb: true, grpc: false });
router.service(SignalingService, {
  async *call(req, ctx) {
    const host = hostOf(ctx);
    if (!req.sdp) throw new ConnectError("sdp is required", Code.InvalidArgument);
    const uuid = crypto.randomUUID();
    const ws = await socketTo(ctx.values.get(envKey), host, `role=caller&call=${uuid}`);
    ws.send(toBinary(AnswerRequestSchema, create(AnswerRequestSchema, { uuid, stage: { case: "init", value: { sdp: req.sdp } } })));
    yield* messagesFrom(ws, CallResponseSchema);
  },
  async *answer(responses, ctx) {
    const ws = await socketTo(ctx.values.get(envKey), hostOf(ctx), "role=answerer");
    void (async () => {
      for await (const res of responses) ws.send(toBinary(AnswerResponseSchema, res));
    })().catch(() => undefined);
    yield* messagesFrom(ws, AnswerRequestSchema);
  },
  async callUpdate(req, ctx) {
    await ctx.values.get(envKey).HOST.getByName(hostOf(ctx)).update(toBinary(CallUpdateRequestSchema, req));
    return {};
  },
});
const handlers = new Map(router.handlers.map((h) => [h.requestPath, h]));

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/healthz") return new Response("ok"); // processes.mjs startWrangler waits for it
    const handler = handlers.get(url.pathname);
    if (!handler) return new Response(JSON.stringify({ code: "unimplemented", message: "not found" }), { status: 404 });
    // "2": workerd streams a response while the request body still arrives, which connect-es only
    // allows bidi streams over HTTP/2 (worker/connect-mount.ts says the same for this Worker).
    const req = universalServerRequestFromFetch(request, { httpVersion: "2" });
    return universalServerResponseToFetch(await handler({ ...req, contextValues: createContextValues().set(envKey, env) }));
  },
};

// Door: Viam's proto.rpc.webrtc.v1.SignalingService, with the semantics of goutils'
// signaling server (wrtc_signaling_server.go) on the shared call model.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import type { Signal } from "../model/call-model";
import { asyncQueue } from "../client/async-queue";
import {
  SignalingService, WebRTCConfigSchema, type AnswerRequest, type AnswerResponse,
} from "../proto/gen/proto/rpc/webrtc/v1/signaling_pb";
import { requireActsFor, requireClaims, requireIdentity } from "./auth";
import { callerProof } from "./caller-proof";
import { abandon, applyInOrder, callStub, CallSocket, orThrow, serveCallee, waitForCall } from "./call-streams";
import type { Result } from "../model/result";
import { envOf } from "./connect-context";
import { iceServersFor } from "../model/ice-servers";
import { admit } from "./rate-limit";
import { ANSWERER_HEARTBEAT_MS, MAX_ANSWER_HOSTS, NAME_PATTERN, OFFER_DEADLINE_MS } from "../model/limits";
import { iceFromWire, iceToWire } from "../codecs/viam-ice";
import { NORMAL_CLOSURE } from "../model/close-codes";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Hosts named in `rpc-host` (comma-separated), at most `max`. */
function hostsOf(ctx: HandlerContext, max: number): string[] {
  const hosts = (ctx.requestHeader.get("rpc-host") ?? "").split(",").map((h) => h.trim()).filter(Boolean);
  if (hosts.length === 0) throw new ConnectError("rpc-host header is required", Code.InvalidArgument);
  if (hosts.length > max) throw new ConnectError(`rpc-host names ${hosts.length} hosts; at most ${max} allowed`, Code.InvalidArgument);
  for (const h of hosts) if (!NAME_PATTERN.test(h)) throw new ConnectError(`invalid host name in rpc-host`, Code.InvalidArgument);
  return hosts;
}

function callIdOf(uuid: string): string {
  if (!UUID.test(uuid)) throw new ConnectError("uuid is not a call id", Code.InvalidArgument);
  return uuid.toLowerCase();
}

function status(code: Code, message: string) {
  return { code, message, details: [] };
}

async function configFor(env: Env, identity: string, disableTrickle: boolean): Promise<MessageInitShape<typeof WebRTCConfigSchema>> {
  const servers = await iceServersFor(env, identity);
  return {
    additionalIceServers: servers.map((s) => ({ urls: s.urls, username: s.username ?? "", credential: s.credential ?? "" })),
    disableTrickle,
  };
}

/** Translates a call signal into the stage the answering host receives. */
async function toAnswerRequest(env: Env, host: string, uuid: string, signal: Signal) {
  switch (signal.kind) {
    case "offer": {
      // Both are ours to make and independent: made side by side, not one after the other.
      const [optionalConfig, callerAuthToken] = await Promise.all([configFor(env, host, signal.disableTrickle),
        callerProof(env.AUTH_SECRET, { caller: signal.caller, host, callId: uuid, deadline: signal.deadline })]);
      return { uuid, stage: { case: "init" as const, value: {
        sdp: signal.sdp, optionalConfig, deadline: timestampFromMs(signal.deadline), callerAuthToken,
      } } };
    }
    case "candidate":
      return { uuid, stage: { case: "update" as const, value: { candidate: iceToWire(signal.candidate) } } };
    case "done":
      return { uuid, stage: { case: "done" as const, value: {} } };
    case "error":
      return { uuid, stage: { case: "error" as const, value: { status: status(signal.code, signal.message) } } };
    case "answer":
      throw new Error("an answer is never queued for the callee");
  }
}

/** The request for one stage sent by the answering host, over the callee's socket, and whether
 * it was the host's last. A reconnect of that socket mid-exchange repeats a request at most once
 * in effect: `sent` counts the host's candidates, so a repeated one is applied once. */
function answerRequestOf(socket: CallSocket, callId: string, res: AnswerResponse,
  sent: { candidates: number }): { answer: Promise<Result<void>>; last: boolean } {
  if (res.uuid && res.uuid.toLowerCase() !== callId) {
    throw new ConnectError(`stage for call ${res.uuid} on the stream of call ${callId}`, Code.InvalidArgument);
  }
  switch (res.stage.case) {
    case "init":
      return { answer: socket.request({ op: "answer", sdp: res.stage.value.sdp }), last: false };
    case "update": {
      if (!res.stage.value.candidate) throw new ConnectError("update stage without a candidate", Code.InvalidArgument);
      return { answer: socket.candidate(iceFromWire(res.stage.value.candidate), sent.candidates++), last: false };
    }
    case "done":
      return { answer: socket.request({ op: "done" }), last: true };
    case "error": {
      const s = res.stage.value.status;
      return { answer: socket.request({ op: "fail", code: (s?.code ?? Code.Unknown) as Code, message: s?.message ?? "answerer failed" }), last: true };
    }
    default:
      throw new ConnectError("answer stage missing", Code.InvalidArgument);
  }
}

export function viamSignaling(router: ConnectRouter): void {
  router.service(SignalingService, {
    async *call(req, ctx) {
      const env = envOf(ctx);
      const identity = await requireIdentity(ctx.requestHeader, env.AUTH_SECRET);
      const [host] = hostsOf(ctx, 1);
      if (!req.sdp) throw new ConnectError("sdp is required", Code.InvalidArgument);
      const uuid = crypto.randomUUID();
      // Admitted before the call's socket opens, so a refused request creates no call: a token this
      // isolate holds (or a remembered refusal) decides at once, else the caller's object is asked.
      await admit(env, identity);
      const socket = await CallSocket.start(env, uuid, {
        host, caller: { identity, door: "viam" }, sdp: req.sdp, disableTrickle: req.disableTrickle,
        deadline: Date.now() + OFFER_DEADLINE_MS,
      });
      // The client going away (tab closed, abort) closes the socket as abandoned: the host's
      // Answer stream ends with an error stage at once.
      const onAbort = () => abandon(socket);
      ctx.signal.addEventListener("abort", onAbort, { once: true });
      let finished = false;
      try {
        for await (const signal of socket.signals()) {
          if (signal.kind === "answer") yield { uuid, stage: { case: "init", value: { sdp: signal.sdp } } };
          else if (signal.kind === "candidate" && !req.disableTrickle) {
            yield { uuid, stage: { case: "update", value: { candidate: iceToWire(signal.candidate) } } };
          } else if (signal.kind === "error") {
            finished = true;
            throw new ConnectError(signal.message, signal.code);
          } else if (signal.kind === "done") {
            // The Viam SDK waits for the Call stream to end once the answerer is done.
            break;
          }
        }
        finished = true;
      } finally {
        ctx.signal.removeEventListener("abort", onAbort);
        if (finished) socket.close(NORMAL_CLOSURE, "finished");
        else abandon(socket);
      }
    },

    async callUpdate(req, ctx) {
      const env = envOf(ctx);
      const identity = await requireIdentity(ctx.requestHeader, env.AUTH_SECRET);
      await admit(env, identity);
      hostsOf(ctx, 1);
      const call = callStub(env, callIdOf(req.uuid));
      switch (req.update.case) {
        case "candidate":
          orThrow(await call.act("caller", identity, { op: "candidate", candidate: iceFromWire(req.update.value) }));
          break;
        case "done":
          // Accepted after the Call stream ended too: the SDK sends done late.
          if (req.update.value) orThrow(await call.act("caller", identity, { op: "done" }));
          break;
        case "error":
          orThrow(await call.act("caller", identity, { op: "fail", code: (req.update.value.code || Code.Unknown) as Code,
            message: req.update.value.message || "caller failed" }));
          break;
        default:
          throw new ConnectError("update is required (candidate, done or error)", Code.InvalidArgument);
      }
      return {};
    },

    async *answer(responses, ctx) {
      const env = envOf(ctx);
      const claims = await requireClaims(ctx.requestHeader, env.AUTH_SECRET);
      const hosts = hostsOf(ctx, MAX_ANSWER_HOSTS);
      for (const h of hosts) requireActsFor(claims, h);
      const heartbeats = ctx.requestHeader.get("heartbeats-allowed") === "true";
      // Heartbeats come from here while the host objects sleep: waiting costs them nothing.
      const heartbeat = asyncQueue<{ uuid: string; stage: { case: "heartbeat"; value: object } }>();
      const waiting = waitForCall(env, hosts, "viam", { abort: ctx.signal, heartbeatMs: ANSWERER_HEARTBEAT_MS,
        onIdle: () => { if (heartbeats) heartbeat.push({ uuid: "", stage: { case: "heartbeat", value: {} } }); return false; } })
        .finally(() => heartbeat.close());
      waiting.catch(() => undefined); // awaited below, once the heartbeats stop
      for await (const beat of heartbeat) yield beat;
      const call = await waiting;
      ctx.signal.throwIfAborted();
      if (!call) throw new ConnectError("the answerer went away", Code.Canceled);
      const { callId, host } = call;
      yield* serveCallee({
        call,
        consume: async (socket) => {
          const sent = { candidates: 0 };
          if ((await applyInOrder(responses, (res) => answerRequestOf(socket, callId, res, sent))) === "last") return;
          // The host closed its side without done or error: it can send nothing more.
          throw new ConnectError("the answering host closed its stream before done", Code.Unavailable);
        },
        emit: async (signal) => (await toAnswerRequest(env, host, callId, signal)) as AnswerRequest,
      });
    },

    async optionalWebRTCConfig(_req, ctx) {
      const env = envOf(ctx);
      const identity = await requireIdentity(ctx.requestHeader, env.AUTH_SECRET);
      hostsOf(ctx, MAX_ANSWER_HOSTS);
      return { config: await configFor(env, identity, false) };
    },

    async reportConnectionMetadata(req, ctx) {
      const env = envOf(ctx);
      const identity = await requireIdentity(ctx.requestHeader, env.AUTH_SECRET);
      const [host] = hostsOf(ctx, MAX_ANSWER_HOSTS);
      // Newer SDKs send this fire-and-forget after each dial; it goes to the Worker's logs.
      console.log("viam connection metadata", { identity, host, stage: req.reachedStage,
        durationMs: req.durationMs, path: req.signalingPath, failureCode: req.failureCode,
        local: req.local?.type, remote: req.remote?.type });
      return {};
    },
  });
}

// Door: protocol.voice.v1.VoiceService. A Voice client is always the answering side: an open
// Connect stream means "online to take calls"; it gets the oldest waiting call's offer, then the
// caller's candidates, and sends back its answer and candidates. One stream carries one call.
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import type { IceCandidate, Signal as CallSignal } from "../model/call-model";
import { VoiceService, type ClientSignal } from "../proto/gen/protocol/voice/v1/voice_pb";
import { requireIdentity } from "./auth";
import { orThrow, serveCallee, SPINE_CLOSE, waitForCall, type CallSocket } from "./call-streams";
import { envOf } from "./connect-context";
import { ANSWERER_HEARTBEAT_MS } from "../model/limits";
import { admitFromLease } from "./rate-limit";
import { sdpFromViam, sdpToViam } from "../codecs/viam-sdp";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Request: answer only this call. Response: the call this stream took. */
export const VOICE_CALL_ID_HEADER = "voice-call-id";

/**
 * A Voice candidate string is either the JSON of an RTCIceCandidateInit or a bare candidate
 * line. A bare line names no m-line; voice calls carry one audio m-line, so it is index 0
 * (browsers refuse a candidate with neither sdpMid nor sdpMLineIndex).
 */
export function candidateFromVoice(text: string): IceCandidate {
  if (text.trimStart().startsWith("{")) {
    let init: Partial<IceCandidate>;
    try {
      init = JSON.parse(text) as Partial<IceCandidate>;
    } catch {
      throw new ConnectError("candidate is neither JSON nor a candidate line", Code.InvalidArgument);
    }
    if (typeof init.candidate !== "string" || init.candidate === "") {
      throw new ConnectError("candidate JSON has no candidate", Code.InvalidArgument);
    }
    // RTCIceCandidateInit.sdpMLineIndex is an unsigned short. Anything else would reach a Viam
    // caller as a uint32 its stream cannot encode, failing that stream instead of this one.
    const index = init.sdpMLineIndex;
    if (index !== undefined && index !== null && !(Number.isInteger(index) && index >= 0 && index <= 0xffff)) {
      throw new ConnectError("candidate sdpMLineIndex must be an integer 0–65535", Code.InvalidArgument);
    }
    return {
      candidate: init.candidate,
      ...(typeof init.sdpMid === "string" ? { sdpMid: init.sdpMid } : {}),
      ...(typeof init.sdpMLineIndex === "number" ? { sdpMLineIndex: init.sdpMLineIndex } : {}),
      ...(typeof init.usernameFragment === "string" ? { usernameFragment: init.usernameFragment } : {}),
    };
  }
  return { candidate: text, sdpMLineIndex: 0 };
}

export function candidateToVoice(c: IceCandidate): string {
  return JSON.stringify(c);
}

export function voice(router: ConnectRouter): void {
  router.service(VoiceService, {
    async *connect(signals, ctx) {
      const env = envOf(ctx);
      const identity = await requireIdentity(ctx.requestHeader, env.AUTH_SECRET);
      // Admitted with a token this isolate holds, or else by the host object the stream's socket
      // opens anyway: no separate lease request.
      const admitted = admitFromLease(identity);
      const only = ctx.requestHeader.get(VOICE_CALL_ID_HEADER) ?? undefined;
      if (only !== undefined && !UUID.test(only)) throw new ConnectError("voice-call-id is not a call id", Code.InvalidArgument);
      // Read the client while waiting for a call: a signal before any offer is an error, and a
      // client that closes its side is no longer online.
      const inbox = signals[Symbol.asyncIterator]();
      const early = inbox.next();
      let first: IteratorResult<ClientSignal> | undefined;
      const spoke = new AbortController();
      early.then((r) => { first = r; spoke.abort(); }, () => spoke.abort());
      const call = await waitForCall(env, [identity], "voice", { only: only?.toLowerCase(), admit: !admitted,
        abort: AbortSignal.any([ctx.signal, spoke.signal]), heartbeatMs: ANSWERER_HEARTBEAT_MS });
      ctx.signal.throwIfAborted();
      // The client spoke (or left) before any offer. A call handed out in the same instant goes
      // back in line (no call), or, claimed already, ends so its caller is told instead of left ringing.
      const before = first ?? (call ? undefined : await early);
      if (before) {
        if (before.done) {
          call?.release(SPINE_CLOSE.abandoned);
          return;
        }
        const message = `${before.value.event.case ?? "signal"} before any offer`;
        if (call) {
          await call.socket.request({ op: "fail", code: Code.FailedPrecondition, message });
          call.release(1000);
        }
        throw new ConnectError(message, Code.FailedPrecondition);
      }
      if (!call) throw new ConnectError("stopped waiting for a call", Code.Canceled);
      const { callId } = call;
      // Tells the client which call it took (for `GET /calls/:id/history`, `POST /calls/:id/hangup`):
      // the header that binds a stream to a call, sent back with the offer.
      ctx.responseHeader.set(VOICE_CALL_ID_HEADER, callId);
      /** The answer travels back in the encoding the caller's offer came in (known at the offer,
       * which comes before anything the client can answer). */
      let viamEncoded = false;
      /** Candidates this stream has applied: the index that makes a repeated candidate a no-op. */
      let candidatesSent = 0;

      yield* serveCallee({
        call,
        consume: async (socket) => {
          for (let r = await early; !r.done; r = await inbox.next()) await applyClientSignal(socket, r.value);
          // The client closed its side: it has no more candidates (Voice has no explicit done).
          orThrow(await socket.request({ op: "done" }));
        },
        emit: (signal: CallSignal) => {
          switch (signal.kind) {
            case "offer":
              viamEncoded = sdpFromViam(signal.sdp) !== null;
              return { event: { case: "offer", value: { offer: sdpFromViam(signal.sdp) ?? signal.sdp } } };
            case "candidate":
              return { event: { case: "candidate", value: { candidate: candidateToVoice(signal.candidate) } } };
            case "error":
              throw new ConnectError(signal.message, signal.code);
            default:
              return null;
          }
        },
      });

      async function applyClientSignal(socket: CallSocket, signal: ClientSignal) {
        switch (signal.event.case) {
          case "answer": {
            const sdp = signal.event.value.answer;
            if (!sdp) throw new ConnectError("answer is empty", Code.InvalidArgument);
            const answer = viamEncoded && sdpFromViam(sdp) === null ? sdpToViam("answer", sdp) : sdp;
            orThrow(await socket.request({ op: "answer", sdp: answer }));
            return;
          }
          case "candidate": {
            const text = signal.event.value.candidate;
            if (!text) throw new ConnectError("candidate is empty", Code.InvalidArgument);
            const candidate = candidateFromVoice(text);
            const index = candidatesSent;
            orThrow(await socket.candidate(candidate, index));
            candidatesSent++;
            return;
          }
          default:
            throw new ConnectError("signal carries neither an answer nor a candidate", Code.InvalidArgument);
        }
      }
    },
  });
}

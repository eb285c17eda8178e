// A Viam-style answering host in Node, for end-to-end tests: the counterpart of goutils'
// rpc/wrtc_signaling_answerer.go, small enough to read in one go.
//
// It holds a bidi SignalingService.Answer stream open with `rpc-host: <host>`. For each offer
// (init stage) it builds an @roamhq/wrtc peer with the two pre-negotiated channels every Viam
// peer has (`data` id 0, `negotiation` id 1), answers the offer, trickles its candidates as
// update stages and sends done once ICE gathering completes or `data` opens (whichever is
// first, as goutils does). Bytes arriving on `data`, or on any channel the caller opens later,
// are echoed back with a prefix. One Answer stream carries one call; the host then opens a new
// stream for the next one.
//
// SDP wire format (SDK src/rpc/signaling-exchange.ts, goutils EncodeSDP/DecodeSDP):
// standard padded base64 of JSON {"type","sdp"}; the SDK's btoa/atob are Latin-1.

import { createRequire } from "node:module";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createWritableIterable } from "@connectrpc/connect/protocol";
import { createGrpcWebTransport } from "@connectrpc/connect-node";
import {
  SignalingService,
  type AnswerRequestInitStage,
  type AnswerResponseSchema,
  type ICECandidate,
  type WebRTCConfig,
} from "../../proto/gen/proto/rpc/webrtc/v1/signaling_pb";

type Wrtc = typeof import("@roamhq/wrtc");
/** @roamhq/wrtc is CommonJS; load it the same way however the test runner transforms ESM. */
export const wrtc: Wrtc = createRequire(import.meta.url)("@roamhq/wrtc");

export interface ViamHostAnswererOptions {
  /** Signaling server base URL, e.g. http://127.0.0.1:8799 */
  baseUrl: string;
  /** Host name answered for (rpc-host); the token's sub must equal it. */
  host: string;
  /** Bearer token (HS256 JWT, sub = host). */
  token: string;
  /** Prepended to every echoed message. Default "echo:". */
  echoPrefix?: string;
  log?: (...args: unknown[]) => void;
}

/** One answered call, as the host sees it. */
export interface AnsweredCall {
  uuid: string;
  pc: RTCPeerConnection;
  /** The negotiated `data` channel (id 0). */
  data: RTCDataChannel;
  /** Resolves when `data` is open on the host side. */
  dataOpen: Promise<void>;
  /** Every message received on any channel: [channel label, bytes]. */
  received: Array<[string, Uint8Array]>;
}

export interface ViamHostAnswerer {
  readonly host: string;
  readonly calls: AnsweredCall[];
  /** Resolves with the next call whose init stage arrives (or the first one, if it already did). */
  nextCall(): Promise<AnsweredCall>;
  /** Stops answering, aborts the stream and closes every peer connection. */
  close(): Promise<void>;
}

/** See the wrtc quirk in onInit: how long after the end-of-candidates event done is sent. */
const GATHERING_SETTLE_MS = 100;

export const encodeSdp = (d: { type: string; sdp: string }): string =>
  Buffer.from(JSON.stringify({ type: d.type, sdp: d.sdp }), "latin1").toString("base64");

export const decodeSdp = (s: string): RTCSessionDescriptionInit =>
  JSON.parse(Buffer.from(s, "base64").toString("latin1")) as RTCSessionDescriptionInit;

const candidateFromProto = (c: ICECandidate): RTCIceCandidateInit => ({
  candidate: c.candidate,
  sdpMid: c.sdpMid,
  sdpMLineIndex: c.sdpmLineIndex,
  usernameFragment: c.usernameFragment,
});

const candidateToProto = (c: RTCIceCandidate) => ({
  candidate: c.candidate,
  sdpMid: c.sdpMid ?? undefined,
  sdpmLineIndex: c.sdpMLineIndex ?? undefined,
  usernameFragment: c.usernameFragment ?? undefined,
});

const iceServersFrom = (config?: WebRTCConfig): RTCIceServer[] =>
  (config?.additionalIceServers ?? []).map((s) => ({
    urls: s.urls,
    ...(s.username ? { username: s.username } : {}),
    ...(s.credential ? { credential: s.credential } : {}),
  }));

export function startViamHostAnswerer(opts: ViamHostAnswererOptions): ViamHostAnswerer {
  const log = opts.log ?? (() => {});
  const prefix = new TextEncoder().encode(opts.echoPrefix ?? "echo:");
  const client = createClient(
    SignalingService,
    createGrpcWebTransport({ baseUrl: opts.baseUrl, httpVersion: "1.1" }),
  );
  const headers = {
    "rpc-host": opts.host,
    authorization: `Bearer ${opts.token}`,
    "heartbeats-allowed": "true",
  };
  const abort = new AbortController();
  const calls: AnsweredCall[] = [];
  const waiters: Array<(c: AnsweredCall) => void> = [];
  let handedOut = 0;

  const echo = (label: string, channel: RTCDataChannel, received: AnsweredCall["received"]) => {
    channel.binaryType = "arraybuffer";
    channel.addEventListener("message", (ev: MessageEvent) => {
      const bytes = typeof ev.data === "string" ? new TextEncoder().encode(ev.data) : new Uint8Array(ev.data as ArrayBuffer);
      received.push([label, bytes]);
      const reply = new Uint8Array(prefix.length + bytes.length);
      reply.set(prefix);
      reply.set(bytes, prefix.length);
      channel.send(reply);
    });
  };

  /** Answers one call on one Answer stream; returns when the server ends the stream. */
  async function answerOneCall(): Promise<void> {
    const outbound = createWritableIterable<MessageInitShape<typeof AnswerResponseSchema>>();
    const send = (msg: MessageInitShape<typeof AnswerResponseSchema>) =>
      outbound.write(msg).catch((err) => log("answer send failed", err));
    let pc: RTCPeerConnection | undefined;
    let uuid = "";
    let sentDoneOrError = false;
    const sendDone = () => {
      if (sentDoneOrError) return;
      sentDoneOrError = true;
      void send({ uuid, stage: { case: "done", value: {} } });
    };
    const sendError = (message: string) => {
      if (sentDoneOrError) return;
      sentDoneOrError = true;
      void send({ uuid, stage: { case: "error", value: { status: { code: 2, message } } } });
    };

    const onInit = async (init: AnswerRequestInitStage) => {
      const trickle = !init.optionalConfig?.disableTrickle;
      pc = new wrtc.RTCPeerConnection({ iceServers: iceServersFrom(init.optionalConfig) });
      const call: AnsweredCall = {
        uuid,
        pc,
        data: pc.createDataChannel("data", { id: 0, negotiated: true, ordered: true }),
        dataOpen: Promise.resolve(),
        received: [],
      };
      call.dataOpen = new Promise((resolve) => call.data.addEventListener("open", () => resolve()));
      echo("data", call.data, call.received);
      pc.addEventListener("datachannel", (ev: RTCDataChannelEvent) => echo(ev.channel.label, ev.channel, call.received));
      // Renegotiation channel, as goutils ConfigureForRenegotiation: answer offers sent over it.
      const negotiation = pc.createDataChannel("negotiation", { id: 1, negotiated: true, ordered: true });
      negotiation.addEventListener("message", (ev: MessageEvent) => {
        const peer = pc!;
        void (async () => {
          const desc = decodeSdp(String(ev.data));
          await peer.setRemoteDescription(desc);
          if (desc.type !== "offer") return;
          await peer.setLocalDescription(await peer.createAnswer());
          negotiation.send(encodeSdp(peer.localDescription!));
        })().catch((err) => log("renegotiation failed", err));
      });
      calls.push(call);
      waiters.shift()?.(call);

      // Candidates gathered before the init stage is sent are held back, so init goes first.
      // @roamhq/wrtc quirk: it synthesizes the end-of-candidates (null) event from
      // icegatheringstatechange and can deliver it *before* the candidates themselves, so
      // "gathering complete" is only trusted once in-flight candidate events had time to land.
      let initSent = false;
      const held: RTCIceCandidate[] = [];
      const sendCandidate = (c: RTCIceCandidate) => {
        if (!sentDoneOrError) void send({ uuid, stage: { case: "update", value: { candidate: candidateToProto(c) } } });
      };
      const gathered = new Promise<void>((resolve) => {
        pc!.addEventListener("icecandidate", (ev: RTCPeerConnectionIceEvent) => {
          if (!ev.candidate) return void setTimeout(resolve, GATHERING_SETTLE_MS);
          if (!trickle) return;
          if (initSent) sendCandidate(ev.candidate);
          else held.push(ev.candidate);
        });
      });

      await pc.setRemoteDescription(decodeSdp(init.sdp));
      await pc.setLocalDescription(await pc.createAnswer());
      if (!trickle) await gathered; // then the answer SDP carries every candidate
      await send({ uuid, stage: { case: "init", value: { sdp: encodeSdp(pc.localDescription!) } } });
      initSent = true;
      held.splice(0).forEach(sendCandidate);
      // done at the earlier of: `data` open, or local gathering complete (goutils does the same).
      void Promise.race([call.dataOpen, gathered]).then(sendDone);
    };

    const inbound = client.answer(outbound, { headers, signal: abort.signal });
    try {
      for await (const req of inbound) {
        switch (req.stage.case) {
          case "heartbeat":
            break;
          case "init":
            if (pc) return sendError("got init stage more than once");
            uuid = req.uuid;
            log("offer", uuid);
            await onInit(req.stage.value).catch((err: Error) => sendError(`answerer: ${err.message}`));
            break;
          case "update":
            if (req.uuid !== uuid || !pc) return sendError(`unexpected update for ${req.uuid}`);
            if (req.stage.value.candidate?.candidate) {
              await pc.addIceCandidate(candidateFromProto(req.stage.value.candidate)).catch((err: Error) => log("addIceCandidate", err));
            }
            break;
          case "done": // caller has nothing more to send; the server ends the stream
            break;
          case "error":
            log("caller error", req.stage.value.status?.message);
            break;
        }
      }
    } finally {
      outbound.close();
    }
  }

  void (async () => {
    while (!abort.signal.aborted) {
      try {
        await answerOneCall();
      } catch (err) {
        if (abort.signal.aborted) break;
        log("answer stream failed; retrying", err);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  })();

  return {
    host: opts.host,
    calls,
    nextCall() {
      const i = handedOut++;
      if (i < calls.length) return Promise.resolve(calls[i]!);
      return new Promise((resolve) => waiters.push(resolve));
    },
    async close() {
      abort.abort();
      for (const c of calls) c.pc.close();
    },
  };
}

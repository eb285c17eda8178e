import { Code } from "@connectrpc/connect";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { offerSignal, type Signal } from "../model/call-model";
import { CallSocket } from "../worker/object-sockets";
import { nextHostPush, onlineAnswerer, ringThroughHost, unique } from "./door-clients";

/** The first `n` signals a socket yields. */
async function firstSignals(socket: CallSocket, n: number): Promise<Signal[]> {
  const out: Signal[] = [];
  for await (const signal of socket.signals()) {
    out.push(signal);
    if (out.length === n) break;
  }
  return out;
}

describe("CallSocket.claimWithOffer: the callee's socket to a call handed out with its offer", () => {
  it("yields the handed-out offer at once, sends what the callee says once the claim is open, and skips the object's copy", async () => {
    const host = unique("host");
    const answerer = await onlineAnswerer(host);
    const handed = nextHostPush(answerer);
    const callId = crypto.randomUUID();
    const ringing = await ringThroughHost(host, callId);
    const caller = ringing.webSocket!;
    caller.accept();
    const offer = (await handed)!.offer!;
    const callerHears = new Promise<unknown>((resolve) => caller.addEventListener("message", (e) => {
      const push = JSON.parse(String(e.data)) as { signal?: Signal };
      if (push.signal) resolve(push.signal);
    }));

    const socket = CallSocket.claimWithOffer(env, callId, host, "voice", offer);
    // Said before the claim's socket is known to be open: it waits for it, then goes.
    const answered = socket.request({ op: "answer", sdp: "v=0 answer\r\n" });
    const signals = firstSignals(socket, 2);
    expect((await answered).ok).toBe(true);
    expect(await callerHears).toEqual({ kind: "answer", sdp: "v=0 answer\r\n" });
    await env.CALLS.getByName(callId).act("caller", "alice", { op: "candidate", candidate: { candidate: "candidate:1 1 udp 1 10.0.0.1 9 typ host" } });
    // The offer once (the object's own copy, its first signal for the callee, is not yielded again).
    expect(await signals).toEqual([offer, { kind: "candidate", candidate: { candidate: "candidate:1 1 udp 1 10.0.0.1 9 typ host" } }]);
    expect((await env.CALLS.getByName(callId).history()).map((h) => h.status)).toEqual(["offered", "claimed", "answered"]);
    socket.close(1000, "finished");
    caller.close(1000, "finished");
  });

  it("turns a refused claim into an error signal after the offer, and fails what the callee says", async () => {
    const callId = crypto.randomUUID(); // no such call: its object refuses the claim
    const offer = offerSignal({ sdp: "v=0 offer\r\n", disableTrickle: false, deadline: Date.now() + 10_000, caller: { identity: "alice", door: "viam" } });
    const socket = CallSocket.claimWithOffer(env, callId, unique("host"), "voice", offer);
    const signals = await firstSignals(socket, 3);
    expect(signals).toEqual([offer, { kind: "error", code: Code.NotFound, message: expect.any(String) }]);
    expect(socket.callEnded).toBe(true);
    expect(await socket.request({ op: "answer", sdp: "v=0 answer\r\n" })).toMatchObject({ ok: false, code: Code.NotFound });
  });
});

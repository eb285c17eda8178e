// A restart keeps the state (issue 17): `wrangler dev` stopped and started again on the same
// --persist-to keeps SIP accounts and their status histories, a call live across the restart still
// answers its history and can be hung up, and a Viam machine whose Answer stream reconnects after
// the restart is called again. This file runs a wrangler dev of its own (own-server.ts), since it
// stops it; the calls are signaling only (no WebRTC peers): the server carries SDP unread.
import { createClient, Code, ConnectError } from "@connectrpc/connect";
import { createWritableIterable } from "@connectrpc/connect/protocol";
import { createGrpcWebTransport } from "@connectrpc/connect-node";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SipStatus_StatusType as S } from "../../proto/gen/ondewo/sip/sip_pb";
import { SignalingService, type AnswerResponseSchema } from "../../proto/gen/proto/rpc/webrtc/v1/signaling_pb";
import { freePort, startOwnServer, type OwnServer } from "./own-server";
import { tokenFor } from "./server";
import { registerSipAccount, sipClient, waitForSipStatus, type SipClient } from "./sip-clients";

const OFFER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=restart offer\r\nt=0 0\r\n";
const ANSWER = "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=restart answer\r\nt=0 0\r\n";
/** How often the machine reopens its Answer stream after the server cut it (goutils backs off from 100 ms too). */
const RECONNECT_MS = 100;
/** A Call placed while the machine's new stream is still on its way is not_found: retried this often. */
const CALL_RETRY_MS = 50;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** HTTP/1.1 without Node's keep-alive pool: a socket pooled before the restart leads to the stopped
 * server (same port), and a request sent on it fails with EPIPE or ECONNRESET, not from the server. */
const fresh = (baseUrl: string) => ({ baseUrl, httpVersion: "1.1" as const, nodeOptions: { agent: false as const } });
const run = Date.now().toString(36);

function bearer(sub: string) {
  return async () => ({ authorization: `Bearer ${await tokenFor(sub)}` });
}

const historyOf = async (sip: SipClient) =>
  (await sip.getSipStatusHistory({})).statusHistory.map((s) => ({ type: S[s.statusType], at: s.timestamp?.seconds, callee: s.calleeId }));

/**
 * A Viam machine as goutils runs one, without WebRTC: an Answer stream (gRPC-web) that answers each
 * offer with ANSWER and done, and a fresh stream after each call or after the server cut it.
 */
function viamMachine(baseUrl: () => string, host: string) {
  const abort = new AbortController();
  const offers: Array<{ uuid: string; at: number }> = [];
  const waiters: Array<() => void> = [];
  let streamsOpened = 0;
  void (async () => {
    while (!abort.signal.aborted) {
      const client = createClient(SignalingService, createGrpcWebTransport({ ...fresh(baseUrl()) }));
      const outbound = createWritableIterable<MessageInitShape<typeof AnswerResponseSchema>>();
      try {
        const headers = { ...(await bearer(host)()), "rpc-host": host, "heartbeats-allowed": "true" };
        streamsOpened++;
        for await (const req of client.answer(outbound, { headers, signal: abort.signal })) {
          if (req.stage.case !== "init") continue;
          offers.push({ uuid: req.uuid, at: performance.now() });
          waiters.splice(0).forEach((wake) => wake());
          await outbound.write({ uuid: req.uuid, stage: { case: "init", value: { sdp: ANSWER } } });
          await outbound.write({ uuid: req.uuid, stage: { case: "done", value: {} } });
        }
      } catch {
        if (!abort.signal.aborted) await sleep(RECONNECT_MS);
      } finally {
        outbound.close();
      }
    }
  })();
  return {
    offers,
    get streamsOpened() { return streamsOpened; },
    nextOffer: () => new Promise<void>((resolve) => waiters.push(resolve)),
    stop: () => abort.abort(),
  };
}

/** A Viam caller's whole exchange: Call (until the answer and the stream's end), then CallUpdate done. */
async function callMachine(baseUrl: string, caller: string, host: string): Promise<{ uuid: string; answer: string }> {
  const client = createClient(SignalingService, createGrpcWebTransport({ ...fresh(baseUrl) }));
  const headers = { ...(await bearer(caller)()), "rpc-host": host };
  let uuid = "";
  let answer = "";
  for await (const res of client.call({ sdp: OFFER }, { headers, timeoutMs: 15_000 })) {
    uuid ||= res.uuid;
    if (res.stage.case === "init") answer = res.stage.value.sdp;
  }
  await client.callUpdate({ uuid, update: { case: "done", value: true } }, { headers, timeoutMs: 15_000 });
  return { uuid, answer };
}

/** Calls until the machine's stream is back (not_found until then); returns when the call went through. */
async function callWhenOnline(baseUrl: string, caller: string, host: string, withinMs = 30_000) {
  const until = Date.now() + withinMs;
  for (;;) {
    try {
      return await callMachine(baseUrl, caller, host);
    } catch (err) {
      const code = ConnectError.from(err).code;
      if (Date.now() > until || (code !== Code.NotFound && code !== Code.Unavailable)) throw err;
      await sleep(CALL_RETRY_MS);
    }
  }
}

async function callHttp(baseUrl: string, id: string, as: string, what: "history" | "hangup") {
  return fetch(`${baseUrl}/calls/${id}/${what}`, { method: what === "history" ? "GET" : "POST", headers: await bearer(as)() });
}

describe("wrangler dev stopped and started again on the same state", () => {
  const persist = mkdtempSync(join(tmpdir(), "wrangler-restart-e2e-"));
  let port = 0;
  let server: OwnServer | undefined;
  const alice = { name: `alice-restart-${run}`, password: `alice's secret ${run}` };
  const bob = { name: `bob-restart-${run}`, password: `bob's secret ${run}` };
  const machine = `machine-restart-${run}`;
  const caller = `caller-restart-${run}`;
  let host: ReturnType<typeof viamMachine> | undefined;
  const before = {
    aliceHistory: [] as Awaited<ReturnType<typeof historyOf>>,
    liveCall: "",
    callHistory: undefined as unknown,
  };
  /** When the second server answered its first /healthz (performance.now()). */
  let restartedAt = 0;

  beforeAll(async () => {
    port = await freePort();
    server = await startOwnServer(port, persist);
    const baseUrl = server.baseUrl;

    // SIP: two accounts, a call from alice to bob that rings and is hung up, so alice's history has
    // the call's statuses in it.
    await registerSipAccount(fresh(baseUrl), alice.name, alice.password);
    await registerSipAccount(fresh(baseUrl), bob.name, bob.password);
    const aliceSip = sipClient(fresh(baseUrl), alice.name, alice.password);
    const bobSip = sipClient(fresh(baseUrl), bob.name, bob.password);
    await aliceSip.startSession({ accountName: alice.name, autoAnswerInterval: 0 });
    await bobSip.startSession({ accountName: bob.name, autoAnswerInterval: 0 });
    await aliceSip.startCall({ calleeId: bob.name });
    await waitForSipStatus(bobSip, S.incoming_call_initiated);
    await aliceSip.endCall({ hardHangup: true });
    await waitForSipStatus(aliceSip, S.outgoing_call_finished);
    before.aliceHistory = await historyOf(aliceSip);

    // Viam: a machine online, and a call to it whose exchange is complete: live, with no stream open.
    host = viamMachine(() => server!.baseUrl, machine);
    const call = await callWhenOnline(baseUrl, caller, machine);
    expect(call.answer).toBe(ANSWER);
    before.liveCall = call.uuid;
    const history = await callHttp(baseUrl, call.uuid, caller, "history");
    expect(history.status).toBe(200);
    before.callHistory = await history.json();

    await server.stop();
    server = await startOwnServer(port, persist);
    restartedAt = performance.now();
  }, 240_000);

  afterAll(async () => {
    host?.stop();
    if (process.env.E2E_LOG) console.log(server?.output());
    await server?.stop();
    rmSync(persist, { recursive: true, force: true });
  });

  it("keeps a SIP account: its password still signs in and its status history is as it was", async () => {
    expect(before.aliceHistory.map((h) => h.type)).toEqual(expect.arrayContaining(["outgoing_call_initiated", "outgoing_call_finished"]));
    const after = await historyOf(sipClient(fresh(server!.baseUrl), alice.name, alice.password));
    expect(after.slice(0, before.aliceHistory.length)).toEqual(before.aliceHistory);
  });

  it("keeps a live call: its history still answers, and it can be hung up", async () => {
    const { baseUrl } = server!;
    const history = await callHttp(baseUrl, before.liveCall, caller, "history");
    expect(history.status).toBe(200);
    const kept = await history.json() as { phase: string; history: Array<{ status: string }> };
    expect(kept).toEqual(before.callHistory);
    expect(kept.phase).not.toBe("ended");

    const hungUp = await callHttp(baseUrl, before.liveCall, machine, "hangup");
    expect(hungUp.status).toBe(204);
    const ended = await (await callHttp(baseUrl, before.liveCall, caller, "history")).json() as { phase: string; history: Array<{ status: string }> };
    expect(ended.phase).toBe("ended");
    expect(ended.history.at(-1)?.status).toBe("hung_up");
  });

  it("calls a Viam machine again once its Answer stream has reconnected", async () => {
    const { baseUrl } = server!;
    const offered = host!.offers.length;
    const placedAt = performance.now();
    const call = await callWhenOnline(baseUrl, `${caller}-again`, machine);
    expect(call.answer).toBe(ANSWER);
    expect(host!.offers.length).toBe(offered + 1);
    const reachedAt = host!.offers.at(-1)!.at;
    // The first call after the restart (retried while the machine's new stream was on its way),
    // then one more on the stream the machine opened after it: the plain cost of a call again.
    const nextStream = host!.nextOffer();
    const secondAt = performance.now();
    await callWhenOnline(baseUrl, `${caller}-again`, machine);
    await nextStream;
    const secondMs = host!.offers.at(-1)!.at - secondAt;
    console.log(`restart: server healthy → machine offered a call ${Math.round(reachedAt - restartedAt)} ms ` +
      `(placed ${Math.round(placedAt - restartedAt)} ms after); next call → offer ${Math.round(secondMs)} ms`);
    expect(reachedAt - restartedAt).toBeLessThan(10_000);
    expect(secondMs).toBeLessThan(1_000);
  });
});

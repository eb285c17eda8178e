// The security probe's holes (issue 16), tried again from outside against wrangler dev with the
// generated Connect clients over HTTP/1.1, as an attacker would: the callee reusing the caller's
// credential, squatting a SIP name, guessing passwords, and reading credentialed CORS.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createWritableIterable } from "@connectrpc/connect/protocol";
import { createConnectTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { Sip } from "../../proto/gen/ondewo/sip/sip_pb";
import { AnswerResponseSchema, SignalingService } from "../../proto/gen/proto/rpc/webrtc/v1/signaling_pb";
import { baseUrl, tokenFor } from "./server";

let seq = 0;
const unique = (who: string) => `${who}-sec-${Date.now().toString(36)}-${seq++}`;

function clientWith<S extends typeof SignalingService | typeof Sip>(service: S, headers: Record<string, string>) {
  return createClient(service, createConnectTransport({ baseUrl, httpVersion: "1.1",
    interceptors: [(next) => (req) => { for (const [k, v] of Object.entries(headers)) req.header.set(k, v); return next(req); }] }));
}

async function codeOf(p: Promise<unknown>): Promise<Code | "ok"> {
  try { await p; return "ok"; } catch (err) { return ConnectError.from(err).code; }
}

describe("security against wrangler dev", () => {
  it("hands the callee a caller proof that no door accepts as a login, never the caller's token", async () => {
    const host = unique("machine");
    const caller = unique("caller");
    const callerToken = await tokenFor(caller);
    const outbox = createWritableIterable<MessageInitShape<typeof AnswerResponseSchema>>();
    const answer = clientWith(SignalingService, { authorization: `Bearer ${await tokenFor(host)}`, "rpc-host": host })
      .answer(outbox)[Symbol.asyncIterator]();
    const viam = clientWith(SignalingService, { authorization: `Bearer ${callerToken}`, "rpc-host": host });
    // The Answer stream registers a few milliseconds after it opens: retry the Call until then.
    let call: AsyncIterator<unknown> | undefined;
    const init = answer.next();
    for (let i = 0; i < 50 && !call; i++) {
      const attempt = viam.call({ sdp: "v=0\r\noffer\r\n" })[Symbol.asyncIterator]();
      const first = Promise.race([attempt.next(), init.then(() => "offered")]);
      if ((await first.catch(() => "refused")) === "offered") call = attempt;
      else await new Promise((r) => setTimeout(r, 100));
    }
    const stage = (await init).value!;
    expect(stage.stage.case).toBe("init");
    const proof = stage.stage.case === "init" ? stage.stage.value.callerAuthToken ?? "" : "";
    expect(proof).not.toBe("");
    expect(proof).not.toBe(callerToken);
    const asProof = { authorization: `Bearer ${proof}` };
    expect(await codeOf(clientWith(Sip, asProof).getSipStatusHistory({}))).toBe(Code.Unauthenticated);
    expect(await codeOf(clientWith(Sip, asProof).registerAccount({ accountName: caller, password: "taken over" }))).toBe(Code.Unauthenticated);
    const asCaller = clientWith(SignalingService, { ...asProof, "rpc-host": caller });
    expect(await codeOf(asCaller.answer(createWritableIterable())[Symbol.asyncIterator]().next())).toBe(Code.Unauthenticated);
    const history = await fetch(`${baseUrl}/calls/${stage.uuid}/history`, { headers: asProof });
    expect(history.status).toBe(401);
    outbox.close();
  });

  it("refuses to create a SIP account without a bearer token for its name", async () => {
    expect(await codeOf(clientWith(Sip, {}).registerAccount({ accountName: unique("squat"), password: "mine" }))).toBe(Code.Unauthenticated);
  });

  it("throttles wrong SIP passwords with resource_exhausted while the owner's token keeps working", async () => {
    const name = unique("guessed");
    await clientWith(Sip, { authorization: `Bearer ${await tokenFor(name)}` }).registerAccount({ accountName: name, password: "right" });
    const codes: (Code | "ok")[] = [];
    for (let i = 0; i < 7; i++) {
      codes.push(await codeOf(clientWith(Sip, { authorization: `Basic ${btoa(`${name}:guess ${i}`)}` }).getSipStatus({})));
    }
    expect(codes.slice(0, 5)).toEqual(Array(5).fill(Code.Unauthenticated));
    expect(codes.slice(5)).toEqual([Code.ResourceExhausted, Code.ResourceExhausted]);
    expect(await codeOf(clientWith(Sip, { authorization: `Bearer ${await tokenFor(name)}` }).getSipStatus({}))).toBe("ok");
  });

  it("answers CORS from any origin without allowing credentials", async () => {
    const res = await fetch(`${baseUrl}/ondewo.sip.Sip/GetSipStatus`, { method: "OPTIONS", headers: {
      origin: "https://evil.example", "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type",
    } });
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(res.headers.get("access-control-allow-credentials")).toBeNull();
  });
});

// Door: one call over plain HTTP + JSON, for clients whose signaling door has no message for it
// (the demo page; any browser). `GET /calls/:id/history` reads the call's status history, and
// `POST /calls/:id/hangup` ends the call for both sides. Only the call's caller or callee may do
// either, as the side its token's identity holds; everyone else is refused.
import { Code } from "@connectrpc/connect";
import type { Context } from "hono";
import type { CallSummary } from "../durable-objects/call";
import type { Side } from "../model/call-model";
import { failure, success, type Result } from "../model/result";
import { tokenFrom, verifyIdentity } from "./auth";
import { callStub } from "./call-streams";
import type { AppEnv } from "./env";
import { httpError } from "./http-errors";

type CallContext = Context<AppEnv, "/calls/:id/history" | "/calls/:id/hangup">;

const CALL_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `{ id, phase, caller, callee, history }`: who is in the call, and every status so far, oldest first. */
export async function callHistory(c: CallContext): Promise<Response> {
  const party = await partyOf(c);
  if (!party.ok) return httpError(c, party);
  const { call } = party.value;
  const history = await callStub(c.env, call.id).history();
  return c.json({ id: call.id, phase: call.phase, caller: call.caller, callee: call.callee ?? null, history });
}

/** Ends the call as the caller's or callee's hang-up; the other side sees `hung_up` in the history
 * (and its streams, if still open, end with OK). Hanging up an ended call changes nothing: 204 again. */
export async function hangUpCall(c: CallContext): Promise<Response> {
  const party = await partyOf(c);
  if (!party.ok) return httpError(c, party);
  const { call, side, identity } = party.value;
  const ended = await callStub(c.env, call.id).act(side, identity, { op: "hangup" });
  if (!ended.ok) return httpError(c, ended);
  return c.body(null, 204);
}

/** The call and the side the bearer of the request's token holds in it. */
async function partyOf(c: CallContext): Promise<Result<{ call: CallSummary; side: Side; identity: string }>> {
  const identity = await verifyIdentity(tokenFrom(c.req.raw.headers), c.env.AUTH_SECRET);
  if (!identity.ok) return identity;
  const id = c.req.param("id");
  if (!CALL_ID.test(id)) return failure(Code.InvalidArgument, "not a call id");
  const summary = await callStub(c.env, id.toLowerCase()).summary();
  if (!summary.ok) return summary;
  const call = summary.value;
  // A call to oneself has one identity on both sides; it hangs up as the caller.
  const side: Side | null = call.caller.identity === identity.value ? "caller"
    : call.callee?.identity === identity.value ? "callee" : null;
  if (!side) return failure(Code.PermissionDenied, `${identity.value} is neither the caller nor the callee of call ${call.id}`);
  return success({ call, side, identity: identity.value });
}

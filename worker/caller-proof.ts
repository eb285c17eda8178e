// The `caller_auth_token` of a Viam Answer init stage. goutils fills it with the caller's own
// bearer token, which would hand every callee a credential valid at every door. Ours proves one
// thing only: "`sub` placed call `call` to host `aud`", until the offer deadline.
//
// It is signed with a key derived from AUTH_SECRET (HMAC-SHA-256(AUTH_SECRET, CALLER_PROOF_LABEL)),
// never with AUTH_SECRET itself, so its signature fails every login check; worker/auth.ts also
// refuses any token that carries `aud` or `call`. A machine that wants to check who calls it can
// be given the derived key (docs/security.md says how to compute it) without the login secret.
import { sign, verify } from "hono/jwt";
import { CALLER_PROOF_MAX_TTL_S } from "../model/limits";
import { keysPerSecret } from "./auth";

export const CALLER_PROOF_LABEL = "caller-proof/v1";

/** The proof key for an AUTH_SECRET, derived once per isolate (auth.ts keysPerSecret). */
export const callerProofKey = keysPerSecret(async (authSecret) => {
  const utf8 = new TextEncoder();
  const master = await crypto.subtle.importKey("raw", utf8.encode(authSecret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const derived = await crypto.subtle.sign("HMAC", master, utf8.encode(CALLER_PROOF_LABEL));
  return crypto.subtle.importKey("raw", derived, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
});

export interface CallerProofClaims {
  caller: string;
  host: string;
  callId: string;
  /** The call's offer deadline (ms): the proof means nothing after it. */
  deadline: number;
}

/** A short-lived token bound to one call and one host, or "" when no AUTH_SECRET is set (the
 * field is then left empty rather than signed with nothing). */
export async function callerProof(authSecret: string | undefined, claims: CallerProofClaims, now = Date.now()): Promise<string> {
  if (!authSecret) return "";
  const iat = Math.floor(now / 1000);
  const exp = Math.min(Math.ceil(claims.deadline / 1000), iat + CALLER_PROOF_MAX_TTL_S);
  return sign({ sub: claims.caller, aud: claims.host, call: claims.callId, iat, exp: Math.max(exp, iat + 1) },
    await callerProofKey(authSecret), "HS256");
}

/** Checks a proof as a machine holding the derived key would: the call and host must match. */
export async function verifyCallerProof(authSecret: string, token: string, host: string, callId: string): Promise<string | undefined> {
  try {
    const payload = await verify(token, await callerProofKey(authSecret), { alg: "HS256", aud: host });
    return payload.call === callId && typeof payload.sub === "string" ? payload.sub : undefined;
  } catch {
    return undefined;
  }
}

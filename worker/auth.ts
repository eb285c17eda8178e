// Bearer tokens: HS256 JWTs signed with AUTH_SECRET, identity in `sub`, `exp` required.
// Verification is hono's (hono/jwt), not hand-written.
import { Code, ConnectError } from "@connectrpc/connect";
import { verify } from "hono/jwt";
import { failure, success, type Result } from "../durable-objects/result";
import { NAME_PATTERN } from "./limits";

/** The token from `Authorization: Bearer …`, or from `?access_token=` (browsers cannot set
 * headers on a WebSocket upgrade). */
export function tokenFrom(headers: Headers, url?: string): string | undefined {
  const header = headers.get("authorization");
  if (header) {
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    return match ? match[1] : undefined;
  }
  if (url) return new URL(url).searchParams.get("access_token") ?? undefined;
  return undefined;
}

/** Verifies a client token and returns its identity. */
export async function verifyIdentity(token: string | undefined, secret: string | undefined): Promise<Result<string>> {
  if (!secret) return failure(Code.Internal, "AUTH_SECRET is not configured");
  if (!token) return failure(Code.Unauthenticated, "missing bearer token");
  let payload: Record<string, unknown>;
  try {
    payload = await verify(token, secret, "HS256");
  } catch (err) {
    return failure(Code.Unauthenticated, `invalid token: ${(err as Error).name}`);
  }
  if (typeof payload.exp !== "number") return failure(Code.Unauthenticated, "token has no exp");
  const sub = payload.sub;
  if (typeof sub !== "string" || !NAME_PATTERN.test(sub)) return failure(Code.Unauthenticated, "token sub is not a valid identity");
  return success(sub);
}

/** Identity of a Connect request, or an `unauthenticated` ConnectError. */
export async function requireIdentity(headers: Headers, secret: string | undefined): Promise<string> {
  const identity = await verifyIdentity(tokenFrom(headers), secret);
  if (!identity.ok) throw new ConnectError(identity.message, identity.code);
  return identity.value;
}

/** An identity may answer, or fetch configuration, only for the host it is. */
export function requireActsFor(identity: string, host: string): void {
  if (identity !== host) throw new ConnectError(`${identity} may not act for host ${host}`, Code.PermissionDenied);
}

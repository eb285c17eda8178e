// Bearer tokens: HS256 JWTs signed with AUTH_SECRET, identity in `sub`, `exp` required.
// Verification is hono's (hono/jwt), not hand-written.
import { Code, ConnectError } from "@connectrpc/connect";
import { verify } from "hono/jwt";
import { failure, success, type Result } from "../model/result";
import { MAX_TOKEN_LIFETIME_S, MAX_VERIFIED_TOKENS, NAME_PATTERN } from "../model/limits";

const MAX_CACHED_KEYS = 8;

/**
 * `make`, memoised per secret for the isolate's life: importing a key was a third of the cost of
 * verifying a token. A CryptoKey is plain data, so sharing it between requests is safe (a promise
 * would not be: see rate-limit.ts). A few secrets at most (AUTH_SECRET, LIVEKIT_API_SECRET, one
 * rotation), so the cache is simply emptied when full.
 */
export function keysPerSecret(make: (secret: string) => Promise<CryptoKey>): (secret: string) => Promise<CryptoKey> {
  const keys = new Map<string, CryptoKey>();
  return async (secret) => {
    let key = keys.get(secret);
    if (!key) {
      key = await make(secret);
      if (keys.size >= MAX_CACHED_KEYS) keys.clear();
      keys.set(secret, key);
    }
    return key;
  };
}

/** The HS256 verification key of a secret. Handing hono a key also keeps it from reading a secret
 * that happens to contain "PUBLIC" or "PRIVATE" as a PEM document. */
export const hs256Key = keysPerSecret((secret) => crypto.subtle.importKey("raw", new TextEncoder().encode(secret),
  { name: "HMAC", hash: "SHA-256" }, false, ["verify"]));

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

/** A verified token: the identity in `sub`, and the hosts its optional `hosts` claim lets it answer
 * for besides itself (a Viam machine answers under several names at once, e.g. its cloud and its
 * local address, on one Answer stream with `rpc-host: a,b`). */
export interface TokenClaims {
  identity: string;
  hosts: string[];
}

/** Verifies a client token and returns its identity. */
export async function verifyIdentity(token: string | undefined, secret: string | undefined): Promise<Result<string>> {
  const claims = await verifyClaims(token, secret);
  return claims.ok ? success(claims.value.identity) : claims;
}

/**
 * Tokens this isolate has verified, by secret and token: a client sends the same token with every
 * request (a call setup is three), and verifying it again was the largest cost of a unary request
 * after the runtime's own. Only a success is kept, with its `exp`, which is checked again on every
 * use; the exact bytes were checked against that secret, so nothing else about them can change.
 * Plain data, shared between requests safely (see keysPerSecret).
 */
const verifiedTokens = new Map<string, { claims: TokenClaims; exp: number }>();

async function verifyClaims(token: string | undefined, secret: string | undefined): Promise<Result<TokenClaims>> {
  if (!secret) {
    // A deploy mistake, not the client's: said in the log, never in the answer.
    console.error("AUTH_SECRET is not configured: every bearer token is refused");
    return failure(Code.Internal, "internal error");
  }
  if (!token) return failure(Code.Unauthenticated, "missing bearer token");
  const key = `${secret}\n${token}`;
  const known = verifiedTokens.get(key);
  if (known) {
    // hono's own rule: a token is expired once exp <= now, in whole seconds.
    if (known.exp > Math.floor(Date.now() / 1000)) return success(known.claims);
    verifiedTokens.delete(key);
    return failure(Code.Unauthenticated, "invalid token: JwtTokenExpired");
  }
  const verified = await verifyToken(token, secret);
  if (verified.ok) {
    if (verifiedTokens.size >= MAX_VERIFIED_TOKENS) verifiedTokens.delete(verifiedTokens.keys().next().value!);
    verifiedTokens.set(key, verified.value);
  }
  return verified.ok ? success(verified.value.claims) : verified;
}

async function verifyToken(token: string, secret: string): Promise<Result<{ claims: TokenClaims; exp: number }>> {
  let payload: Record<string, unknown>;
  try {
    payload = await verify(token, await hs256Key(secret), "HS256");
  } catch (err) {
    return failure(Code.Unauthenticated, `invalid token: ${(err as Error).name}`);
  }
  if (typeof payload.exp !== "number") return failure(Code.Unauthenticated, "token has no exp");
  // A token minted for one purpose (a Viam caller proof names its host in `aud` and its call in
  // `call`, worker/caller-proof.ts) is never a login, whatever key signed it.
  if (payload.aud !== undefined || payload.call !== undefined) {
    return failure(Code.Unauthenticated, "token is bound to an audience or a call and is not a login");
  }
  const issuedAt = typeof payload.iat === "number" ? payload.iat : Math.floor(Date.now() / 1000);
  if (payload.exp - issuedAt > MAX_TOKEN_LIFETIME_S) {
    return failure(Code.Unauthenticated, `token lives longer than ${MAX_TOKEN_LIFETIME_S / 86_400} days (exp - iat)`);
  }
  const sub = payload.sub;
  if (typeof sub !== "string" || !NAME_PATTERN.test(sub)) return failure(Code.Unauthenticated, "token sub is not a valid identity");
  // A malformed grant grants nothing: the token still stands for `sub` alone.
  const hosts = Array.isArray(payload.hosts) && payload.hosts.every((h) => typeof h === "string" && NAME_PATTERN.test(h))
    ? payload.hosts as string[] : [];
  return success({ claims: { identity: sub, hosts }, exp: payload.exp });
}

/** Claims of a Connect request's token, or an `unauthenticated` ConnectError. */
export async function requireClaims(headers: Headers, secret: string | undefined): Promise<TokenClaims> {
  const claims = await verifyClaims(tokenFrom(headers), secret);
  if (!claims.ok) throw new ConnectError(claims.message, claims.code);
  return claims.value;
}

/** Identity of a Connect request, or an `unauthenticated` ConnectError. */
export async function requireIdentity(headers: Headers, secret: string | undefined): Promise<string> {
  return (await requireClaims(headers, secret)).identity;
}

/** A token may answer only for the host it is, or for one its `hosts` claim names. */
export function requireActsFor(claims: TokenClaims, host: string): void {
  if (claims.identity !== host && !claims.hosts.includes(host)) {
    throw new ConnectError(`${claims.identity} may not act for host ${host}`, Code.PermissionDenied);
  }
}

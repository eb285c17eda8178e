// Dev-only door: `POST /dev/token {identity}` → `{token}`, so the demo page (and a person trying
// the service locally) gets a bearer token without minting one by hand. It signs a token for any
// identity, so it exists only where DEV_TOKENS is "1" (wrangler dev with `--var DEV_TOKENS:1`, the
// e2e suite); everywhere else the route answers exactly as a path that does not exist.
import { Code } from "@connectrpc/connect";
import type { Context } from "hono";
import { sign } from "hono/jwt";
import type { AppEnv } from "./env";
import { httpError } from "./http-errors";
import { DEV_TOKEN_TTL_S, NAME_PATTERN, NAME_RULE } from "../model/limits";
import { failure } from "../model/result";

export async function devToken(c: Context<AppEnv>): Promise<Response> {
  if (c.env.DEV_TOKENS !== "1") return c.notFound();
  const body = await c.req.json<{ identity?: unknown }>().catch(() => null);
  const identity = body?.identity;
  if (typeof identity !== "string" || !NAME_PATTERN.test(identity)) {
    return httpError(c, failure(Code.InvalidArgument, `identity must be ${NAME_RULE}`));
  }
  if (!c.env.AUTH_SECRET) {
    return httpError(c, failure(Code.Internal, "dev token requested but AUTH_SECRET is not configured"));
  }
  const now = Math.floor(Date.now() / 1000);
  const token = await sign({ sub: identity, iat: now, exp: now + DEV_TOKEN_TTL_S }, c.env.AUTH_SECRET, "HS256");
  return c.json({ token });
}

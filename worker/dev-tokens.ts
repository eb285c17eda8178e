// Dev-only door: `POST /dev/token {identity}` → `{token}`, so the demo page (and a person trying
// the service locally) gets a bearer token without minting one by hand. It signs a token for any
// identity, so it exists only where DEV_TOKENS is "1" (wrangler dev with `--var DEV_TOKENS:1`, the
// e2e suite); everywhere else the route answers exactly as a path that does not exist.
import type { Context } from "hono";
import { sign } from "hono/jwt";
import type { AppEnv } from "./env";
import { DEV_TOKEN_TTL_S, NAME_PATTERN } from "../model/limits";

export async function devToken(c: Context<AppEnv>): Promise<Response> {
  if (c.env.DEV_TOKENS !== "1") return c.notFound();
  const body = await c.req.json<{ identity?: unknown }>().catch(() => null);
  const identity = body?.identity;
  if (typeof identity !== "string" || !NAME_PATTERN.test(identity)) {
    return c.json({ code: "invalid_argument", message: "identity must be 1–128 of A-Z a-z 0-9 . _ : @ -" }, 400);
  }
  if (!c.env.AUTH_SECRET) {
    console.error("dev token requested but AUTH_SECRET is not configured");
    return c.json({ code: "internal", message: "internal error" }, 500);
  }
  const now = Math.floor(Date.now() / 1000);
  const token = await sign({ sub: identity, iat: now, exp: now + DEV_TOKEN_TTL_S }, c.env.AUTH_SECRET, "HS256");
  return c.json({ token });
}

// The wrangler dev server that global-setup.ts started for this run, and tokens it accepts.
import { sign } from "hono/jwt";
import { inject } from "vitest";

declare module "vitest" {
  export interface ProvidedContext {
    baseUrl: string;
    authSecret: string;
  }
}

export const baseUrl = inject("baseUrl");
export const authSecret = inject("authSecret");

/** A bearer token for `sub`, signed with the server's AUTH_SECRET. */
export function tokenFor(sub: string, ttlSeconds = 600): Promise<string> {
  return sign({ sub, exp: Math.floor(Date.now() / 1000) + ttlSeconds }, authSecret, "HS256");
}

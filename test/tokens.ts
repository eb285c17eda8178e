// Signs client tokens for tests with the same secret the Worker under test is configured with.
import { sign } from "hono/jwt";
import { TEST_AUTH_SECRET } from "./test-secret";

/** `hosts`: the claim that lets the identity answer for those hosts too (worker/auth.ts). */
export function tokenFor(identity: string,
  { secret = TEST_AUTH_SECRET, ttlSeconds = 600, hosts }: { secret?: string; ttlSeconds?: number; hosts?: string[] } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return sign({ sub: identity, iat: now, exp: now + ttlSeconds, ...(hosts ? { hosts } : {}) }, secret, "HS256");
}

// Signs client tokens for tests with the same secret the Worker under test is configured with.
import { sign } from "hono/jwt";
import { TEST_AUTH_SECRET } from "./test-secret";

export function tokenFor(identity: string, { secret = TEST_AUTH_SECRET, ttlSeconds = 600 } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return sign({ sub: identity, iat: now, exp: now + ttlSeconds }, secret, "HS256");
}

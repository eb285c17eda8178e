// Prints a dev bearer token: npm run token -- <identity> [ttl-seconds]
// Signs with AUTH_SECRET from the environment, else from .dev.vars, else .dev.vars.example.
import { readFileSync, existsSync } from "node:fs";
import { sign } from "hono/jwt";

export function devSecret() {
  if (process.env.AUTH_SECRET) return process.env.AUTH_SECRET;
  for (const file of [".dev.vars", ".dev.vars.example"]) {
    if (!existsSync(file)) continue;
    const match = /^AUTH_SECRET=(.*)$/m.exec(readFileSync(file, "utf8"));
    if (match) return match[1].trim();
  }
  throw new Error("AUTH_SECRET not set and no .dev.vars found");
}

export function signToken(identity, secret, ttlSeconds = 3600) {
  const now = Math.floor(Date.now() / 1000);
  return sign({ sub: identity, iat: now, exp: now + ttlSeconds }, secret, "HS256");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [identity, ttl] = process.argv.slice(2);
  if (!identity) {
    console.error("usage: npm run token -- <identity> [ttl-seconds]");
    process.exit(2);
  }
  console.log(await signToken(identity, devSecret(), ttl ? Number(ttl) : 3600));
}

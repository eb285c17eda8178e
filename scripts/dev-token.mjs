// Prints a dev bearer token: npm run token -- <identity> [ttl-seconds] [more-hosts]
// more-hosts (comma-separated) go in the `hosts` claim: names the token may also answer for.
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

export function signToken(identity, secret, ttlSeconds = 3600, hosts = []) {
  const now = Math.floor(Date.now() / 1000);
  return sign({ sub: identity, iat: now, exp: now + ttlSeconds, ...(hosts.length ? { hosts } : {}) }, secret, "HS256");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [identity, ttl, hosts] = process.argv.slice(2);
  if (!identity) {
    console.error("usage: npm run token -- <identity> [ttl-seconds] [more-hosts,comma-separated]");
    process.exit(2);
  }
  console.log(await signToken(identity, devSecret(), ttl ? Number(ttl) : 3600, hosts ? hosts.split(",") : []));
}

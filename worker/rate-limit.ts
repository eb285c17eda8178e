// Requests per identity per second, at the doors: a token bucket per identity, kept by the
// identity's HostObject (durable-objects/host.ts `lease`), so the bound holds across every isolate
// and location. Asking the object on every request would cost an RPC each, so an isolate leases a
// few tokens at once and spends them locally, and remembers a refusal until the bucket has a token
// again: a flood from one client is refused in the isolate, without reaching any object.
import { Code, ConnectError } from "@connectrpc/connect";
import type { Env } from "./env";
import { RATE_LEASE_CACHE_SIZE, RATE_LEASE_TOKENS, RATE_LEASE_TTL_MS, REQUESTS_PER_SECOND } from "./limits";

interface Lease {
  tokens: number;
  expiresAt: number;
  /** The bucket was empty: refuse locally until then. */
  refusedUntil: number;
  renewing?: Promise<void>;
}

/** This isolate's leases by identity, least recently used first. */
const leases = new Map<string, Lease>();

/** Admits one request by `identity`, or throws resource_exhausted. */
export async function admit(env: Env, identity: string): Promise<void> {
  for (;;) {
    const lease = leaseOf(identity);
    const now = Date.now();
    if (now < lease.refusedUntil) {
      throw new ConnectError(`${identity} makes more than ${REQUESTS_PER_SECOND} requests a second; retry in ${lease.refusedUntil - now} ms`,
        Code.ResourceExhausted);
    }
    if (lease.tokens > 0 && now < lease.expiresAt) {
      lease.tokens--;
      return;
    }
    // Concurrent requests of one identity share one renewal.
    lease.renewing ??= renew(env, identity, lease);
    await lease.renewing;
  }
}

function leaseOf(identity: string): Lease {
  let lease = leases.get(identity);
  if (lease) leases.delete(identity);
  else lease = { tokens: 0, expiresAt: 0, refusedUntil: 0 };
  leases.set(identity, lease);
  if (leases.size > RATE_LEASE_CACHE_SIZE) leases.delete(leases.keys().next().value!);
  return lease;
}

async function renew(env: Env, identity: string, lease: Lease): Promise<void> {
  try {
    const { granted, retryAfterMs } = await env.HOSTS.getByName(identity).lease(RATE_LEASE_TOKENS);
    const now = Date.now();
    lease.tokens = granted;
    lease.expiresAt = now + RATE_LEASE_TTL_MS;
    lease.refusedUntil = granted === 0 ? now + Math.max(1, retryAfterMs) : 0;
  } catch (err) {
    // The limiter must not take the service down with it: an unreachable bucket admits this one.
    console.warn("rate limit lease failed; admitting", { identity, err: String(err) });
    lease.tokens = 1;
    lease.expiresAt = Date.now() + RATE_LEASE_TTL_MS;
  } finally {
    lease.renewing = undefined;
  }
}

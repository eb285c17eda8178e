// Requests per identity per second, at the doors: a token bucket per identity, kept by the
// identity's HostObject (durable-objects/host.ts `lease`), so the bound holds across every isolate
// and location. Asking the object on every request would cost an RPC each, so an isolate leases a
// few tokens at once and spends them locally, and remembers a refusal until the bucket has a token
// again: a flood from one client is refused in the isolate, without reaching any object.
import { overRate } from "../model/token-bucket";
import { RATE_LEASE_CACHE_SIZE, RATE_LEASE_TOKENS, RATE_LEASE_TTL_MS } from "../model/limits";

interface Lease {
  tokens: number;
  expiresAt: number;
  /** The bucket was empty: refuse locally until then. */
  refusedUntil: number;
}

/** This isolate's leases by identity, least recently used first. */
const leases = new Map<string, Lease>();

/** Admits one request by `identity`, or throws resource_exhausted. */
export async function admit(env: Env, identity: string): Promise<void> {
  for (;;) {
    const lease = leaseOf(identity);
    if (admitFromLease(identity, lease)) return;
    // Each request short of a token leases for itself. Sharing one renewal promise between
    // concurrent requests would make one request await I/O begun by another: workerd then runs
    // the waiter's continuation in the other's context (its own request body becomes "I/O on
    // behalf of a different request") or cancels it when that request ends first. Only plain
    // numbers are shared; a concurrent renewal's spare tokens are spent by the next requests.
    await renew(env, identity, lease);
  }
}

/**
 * Spends a token this isolate already holds for `identity` (true), or says it holds none (false),
 * so that a request that talks to the identity's HostObject anyway (a Voice stream opening its
 * answerer socket) has the object admit it there instead of leasing first. Throws
 * resource_exhausted while a refusal is remembered.
 */
export function admitFromLease(identity: string, lease = leaseOf(identity)): boolean {
  const now = Date.now();
  // Tokens first: a concurrent renewal may have been refused after others were granted.
  if (lease.tokens > 0 && now < lease.expiresAt) {
    lease.tokens--;
    return true;
  }
  if (now < lease.refusedUntil) throw overRate(identity, lease.refusedUntil - now);
  return false;
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
    lease.tokens = (now < lease.expiresAt ? lease.tokens : 0) + granted;
    lease.expiresAt = now + RATE_LEASE_TTL_MS;
    lease.refusedUntil = granted === 0 ? now + Math.max(1, retryAfterMs) : 0;
  } catch (err) {
    // The limiter must not take the service down with it: an unreachable bucket admits this one.
    console.warn("rate limit lease failed; admitting", { identity, err: String(err) });
    lease.tokens = 1;
    lease.expiresAt = Date.now() + RATE_LEASE_TTL_MS;
  }
}

// Failed password logins of one account, as a pure value: a token bucket per client address and
// one for the account as a whole, each spent only by a wrong password.
//
// - An address out of failures is refused before its password is checked: guessing from it costs
//   the guesser a wait, and us no PBKDF2.
// - An account out of failures (a guesser spread over many addresses) refuses addresses that never
//   logged in to it; an address the owner logged in from keeps being checked, so the owner is not
//   locked out by someone else's guessing. A bearer token whose `sub` is the account always works.
import { Code } from "@connectrpc/connect";
import {
  FAILED_LOGINS_PER_ACCOUNT_BURST, FAILED_LOGINS_PER_ADDRESS_BURST, FAILED_LOGIN_REFILL_MS, MAX_THROTTLED_ADDRESSES,
} from "./limits";
import { failure, success, type Result } from "./result";
import { fullBucket, takeTokens, type TokenBucket } from "./token-bucket";

export interface LoginThrottle {
  account: TokenBucket;
  /** Buckets of addresses that failed lately, least recently failed first. */
  addresses: Map<string, TokenBucket>;
}

/** Tokens a second (token-bucket.ts counts rates per second). */
const RATE = 1000 / FAILED_LOGIN_REFILL_MS;

export function newLoginThrottle(now: number): LoginThrottle {
  return { account: fullBucket(FAILED_LOGINS_PER_ACCOUNT_BURST, now), addresses: new Map() };
}

/** Whether a password from `address` may be checked now; `known`: the address logged in before. */
export function mayTryLogin(throttle: LoginThrottle, address: string, known: boolean, now: number): Result<void> {
  const own = throttle.addresses.get(address);
  if (own) {
    const wait = waitFor(own, now, FAILED_LOGINS_PER_ADDRESS_BURST);
    if (wait > 0) return failure(Code.ResourceExhausted, `too many wrong passwords from this address; retry in ${Math.ceil(wait / 1000)} s`);
  }
  if (!known) {
    const wait = waitFor(throttle.account, now, FAILED_LOGINS_PER_ACCOUNT_BURST);
    if (wait > 0) return failure(Code.ResourceExhausted, `too many wrong passwords for this account; retry in ${Math.ceil(wait / 1000)} s`);
  }
  return success(undefined);
}

/** Spends one failure from the address's bucket and the account's. */
export function recordFailedLogin(throttle: LoginThrottle, address: string, now: number): LoginThrottle {
  const addresses = new Map(throttle.addresses);
  const before = addresses.get(address) ?? fullBucket(FAILED_LOGINS_PER_ADDRESS_BURST, now);
  addresses.delete(address);
  addresses.set(address, takeTokens(before, now, 1, RATE, FAILED_LOGINS_PER_ADDRESS_BURST).bucket);
  // The oldest failing address is forgotten first; the account's bucket still counts its failures.
  while (addresses.size > MAX_THROTTLED_ADDRESSES) addresses.delete(addresses.keys().next().value!);
  return { account: takeTokens(throttle.account, now, 1, RATE, FAILED_LOGINS_PER_ACCOUNT_BURST).bucket, addresses };
}

/** Milliseconds until the bucket holds a whole token again (0: it holds one now). */
function waitFor(bucket: TokenBucket, now: number, burst: number): number {
  // Taking nothing leaves the bucket as it is and says how long until a whole token is there
  // (a negative wait when one is there already).
  return Math.max(0, takeTokens(bucket, now, 0, RATE, burst).retryAfterMs);
}

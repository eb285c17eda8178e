// model/login-throttle.ts: wrong SIP passwords as token buckets, one per client address and one
// per account. Every bound is written out here (5 per address, 20 per account, one more each
// 60 s, 1 024 remembered addresses), not taken from model/limits.ts: a changed limit fails a test.
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { mayTryLogin, newLoginThrottle, recordFailedLogin, type LoginThrottle } from "../model/login-throttle";

const T0 = 1_000_000;

/** `count` wrong passwords from `address`, all at `now`. */
function fail(throttle: LoginThrottle, address: string, count: number, now = T0): LoginThrottle {
  for (let i = 0; i < count; i++) throttle = recordFailedLogin(throttle, address, now);
  return throttle;
}

/** One wrong password from each of `count` addresses named `${prefix}-0`, `${prefix}-1`, … */
function failFromMany(throttle: LoginThrottle, prefix: string, count: number, now = T0): LoginThrottle {
  for (let i = 0; i < count; i++) throttle = recordFailedLogin(throttle, `${prefix}-${i}`, now);
  return throttle;
}

const allowed = { ok: true };
const refused = { ok: false, code: Code.ResourceExhausted };

describe("mayTryLogin: failures per address", () => {
  it("checks a password from an address after 4 wrong ones, and refuses its try after the 5th with resource_exhausted", () => {
    const throttle = newLoginThrottle(T0);
    expect(mayTryLogin(fail(throttle, "198.51.100.1", 4), "198.51.100.1", false, T0)).toMatchObject(allowed);
    expect(mayTryLogin(fail(throttle, "198.51.100.1", 5), "198.51.100.1", false, T0)).toMatchObject(refused);
  });

  it("refuses an address out of failures even when the owner logged in from it before", () => {
    const throttle = fail(newLoginThrottle(T0), "198.51.100.1", 5);
    expect(mayTryLogin(throttle, "198.51.100.1", true, T0)).toMatchObject(refused);
  });

  it("says how long the address waits: 60 s right after its 5th failure", () => {
    const throttle = fail(newLoginThrottle(T0), "198.51.100.1", 5);
    expect(mayTryLogin(throttle, "198.51.100.1", false, T0))
      .toMatchObject({ ...refused, message: "too many wrong passwords from this address; retry in 60 s" });
  });

  it("still checks passwords from another address while one is out of failures", () => {
    const throttle = fail(newLoginThrottle(T0), "198.51.100.1", 5);
    expect(mayTryLogin(throttle, "198.51.100.2", false, T0)).toMatchObject(allowed);
  });

  it("gives an address one more try 60 000 ms after its 5th failure, not 59 999 ms", () => {
    const throttle = fail(newLoginThrottle(T0), "198.51.100.1", 5);
    expect(mayTryLogin(throttle, "198.51.100.1", false, T0 + 59_999)).toMatchObject(refused);
    expect(mayTryLogin(throttle, "198.51.100.1", false, T0 + 60_000)).toMatchObject(allowed);
  });

  it("gives back one try per 60 s, not the whole burst: a wrong password after the wait refuses again", () => {
    let throttle = fail(newLoginThrottle(T0), "198.51.100.1", 5);
    throttle = fail(throttle, "198.51.100.1", 1, T0 + 60_000);
    expect(mayTryLogin(throttle, "198.51.100.1", false, T0 + 60_000)).toMatchObject(refused);
    expect(mayTryLogin(throttle, "198.51.100.1", false, T0 + 119_999)).toMatchObject(refused);
    expect(mayTryLogin(throttle, "198.51.100.1", false, T0 + 120_000)).toMatchObject(allowed);
  });

  it("refills an idle address to 5 tries, never more", () => {
    let throttle = fail(newLoginThrottle(T0), "198.51.100.1", 5);
    // A day later: full again, but with 5 tries, not 1 440.
    const later = T0 + 24 * 60 * 60 * 1000;
    throttle = fail(throttle, "198.51.100.1", 4, later);
    expect(mayTryLogin(throttle, "198.51.100.1", false, later)).toMatchObject(allowed);
    throttle = fail(throttle, "198.51.100.1", 1, later);
    expect(mayTryLogin(throttle, "198.51.100.1", false, later)).toMatchObject(refused);
  });
});

describe("mayTryLogin: failures per account", () => {
  it("still checks a new address after 19 failures from other addresses, and refuses it after the 20th", () => {
    const throttle = newLoginThrottle(T0);
    expect(mayTryLogin(failFromMany(throttle, "guesser", 19), "203.0.113.9", false, T0)).toMatchObject(allowed);
    const exhausted = failFromMany(throttle, "guesser", 20);
    expect(mayTryLogin(exhausted, "203.0.113.9", false, T0))
      .toMatchObject({ ...refused, message: "too many wrong passwords for this account; retry in 60 s" });
  });

  it("keeps checking an address the owner logged in from while the account is out of failures", () => {
    const throttle = failFromMany(newLoginThrottle(T0), "guesser", 20);
    expect(mayTryLogin(throttle, "192.0.2.7", true, T0)).toMatchObject(allowed);
  });

  it("counts every address's failures against the account, including those of one address", () => {
    // 5 from each of 4 addresses: 20 for the account.
    let throttle = newLoginThrottle(T0);
    for (const address of ["a", "b", "c", "d"]) throttle = fail(throttle, address, 5);
    expect(mayTryLogin(throttle, "e", false, T0)).toMatchObject(refused);
  });

  it("gives a new address one try 60 000 ms after the account's 20th failure, not 59 999 ms", () => {
    const throttle = failFromMany(newLoginThrottle(T0), "guesser", 20);
    expect(mayTryLogin(throttle, "203.0.113.9", false, T0 + 59_999)).toMatchObject(refused);
    expect(mayTryLogin(throttle, "203.0.113.9", false, T0 + 60_000)).toMatchObject(allowed);
  });
});

describe("recordFailedLogin", () => {
  it("does not change the throttle it is given", () => {
    const throttle = newLoginThrottle(T0);
    recordFailedLogin(throttle, "198.51.100.1", T0);
    expect(throttle.addresses.size).toBe(0);
    expect(throttle.account.tokens).toBe(20);
  });

  it("remembers 1 024 failing addresses and forgets the least recently failed first", () => {
    let throttle = failFromMany(newLoginThrottle(T0), "addr", 1_024);
    // addr-0 fails again: now addr-1 is the least recently failed.
    throttle = recordFailedLogin(throttle, "addr-0", T0);
    throttle = recordFailedLogin(throttle, "addr-1024", T0);
    expect(throttle.addresses.size).toBe(1_024);
    expect(throttle.addresses.has("addr-0")).toBe(true);
    expect(throttle.addresses.has("addr-1")).toBe(false);
    expect(throttle.addresses.has("addr-1024")).toBe(true);
  });
});

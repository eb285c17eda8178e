// Requests per identity per second (worker/rate-limit.ts, durable-objects/token-bucket.ts): the
// bucket's arithmetic as properties, and the limit at each door that applies it.
import { Code } from "@connectrpc/connect";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fullBucket, takeTokens } from "../durable-objects/token-bucket";
import { RATE_LEASE_TOKENS, REQUEST_BURST, REQUESTS_PER_SECOND } from "../worker/limits";
import { codeOf, errorOf, openVoice, sipAccount, sleep, unique, viamClient } from "./door-clients";

const NO_SUCH_CALL = "00000000-0000-4000-8000-000000000000";

describe("token bucket", () => {
  it("never grants more than the burst plus the rate times the time elapsed, over any run of requests", () => {
    const requests = fc.array(fc.record({ gap: fc.integer({ min: 0, max: 400 }), want: fc.integer({ min: 1, max: 8 }) }), { maxLength: 200 });
    fc.assert(fc.property(requests, (run) => {
      let now = 1_000_000;
      let bucket = fullBucket(REQUEST_BURST, now);
      const start = now;
      let granted = 0;
      for (const { gap, want } of run) {
        now += gap;
        const t = takeTokens(bucket, now, want, REQUESTS_PER_SECOND, REQUEST_BURST);
        expect(t.granted).toBeGreaterThanOrEqual(0);
        expect(t.granted).toBeLessThanOrEqual(want);
        if (t.granted === 0) expect(t.retryAfterMs).toBeGreaterThan(0);
        granted += t.granted;
        bucket = t.bucket;
      }
      expect(granted).toBeLessThanOrEqual(REQUEST_BURST + ((now - start) * REQUESTS_PER_SECOND) / 1000);
    }), { numRuns: 2_000 });
  });

  it("has a token again after the retry time it names", () => {
    let bucket = fullBucket(REQUEST_BURST, 0);
    bucket = takeTokens(bucket, 0, REQUEST_BURST, REQUESTS_PER_SECOND, REQUEST_BURST).bucket;
    const refused = takeTokens(bucket, 0, 1, REQUESTS_PER_SECOND, REQUEST_BURST);
    expect(refused.granted).toBe(0);
    expect(takeTokens(refused.bucket, refused.retryAfterMs, 1, REQUESTS_PER_SECOND, REQUEST_BURST).granted).toBe(1);
  });

  it("mints no tokens when the clock steps back", () => {
    const drained = takeTokens(fullBucket(REQUEST_BURST, 10_000), 10_000, REQUEST_BURST, REQUESTS_PER_SECOND, REQUEST_BURST).bucket;
    expect(takeTokens(drained, 0, 1, REQUESTS_PER_SECOND, REQUEST_BURST).granted).toBe(0);
  });
});

describe("HostObject.lease", () => {
  it(`hands out the ${REQUEST_BURST}-token burst, then refuses with the time until the next token`, async () => {
    const host = env.HOSTS.getByName(unique("leaser"));
    let granted = 0;
    for (let i = 0; i < REQUEST_BURST / RATE_LEASE_TOKENS; i++) granted += (await host.lease(RATE_LEASE_TOKENS)).granted;
    expect(granted).toBeGreaterThanOrEqual(REQUEST_BURST);
    const refused = await host.lease(RATE_LEASE_TOKENS);
    // A few milliseconds passed: at most a token or two has flowed back in.
    expect(refused.granted).toBeLessThanOrEqual(2);
    if (refused.granted === 0) expect(refused.retryAfterMs).toBeLessThanOrEqual(1000 / REQUESTS_PER_SECOND);
  });
});

/** Fires `n` requests at once and counts the codes they end with. */
async function burst(n: number, request: () => Promise<unknown>): Promise<Map<Code | "ok", number>> {
  const codes = await Promise.all(Array.from({ length: n }, () => codeOf(request())));
  const counts = new Map<Code | "ok", number>();
  for (const c of codes) counts.set(c, (counts.get(c) ?? 0) + 1);
  return counts;
}

describe(`${REQUESTS_PER_SECOND} requests a second per identity, burst ${REQUEST_BURST}, at the doors`, () => {
  it("refuses a flood of CallUpdates from one identity with resource_exhausted, and admits the burst", async () => {
    const flooder = await viamClient(unique("flooder"), "some-host");
    const started = Date.now();
    const counts = await burst(100, () => flooder.callUpdate({ uuid: NO_SUCH_CALL, update: { case: "done", value: true } }));
    const elapsed = (Date.now() - started) / 1000;
    // Admitted requests reach the call (there is none: not_found); the rest are refused.
    const admitted = counts.get(Code.NotFound) ?? 0;
    expect(admitted).toBeGreaterThanOrEqual(REQUEST_BURST - RATE_LEASE_TOKENS);
    expect(admitted).toBeLessThanOrEqual(REQUEST_BURST + Math.ceil(elapsed * REQUESTS_PER_SECOND));
    expect(counts.get(Code.ResourceExhausted)).toBe(100 - admitted);
  });

  it("names the limit and when to retry, and admits the identity again once tokens flowed back", async () => {
    const identity = unique("flooder");
    const flooder = await viamClient(identity, "some-host");
    await burst(60, () => flooder.callUpdate({ uuid: NO_SUCH_CALL, update: { case: "done", value: true } }));
    const err = await errorOf(flooder.callUpdate({ uuid: NO_SUCH_CALL, update: { case: "done", value: true } }));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.rawMessage).toMatch(new RegExp(`${identity} makes more than ${REQUESTS_PER_SECOND} requests a second; retry in \\d+ ms`));
    await sleep(1_000);
    expect(await codeOf(flooder.callUpdate({ uuid: NO_SUCH_CALL, update: { case: "done", value: true } }))).toBe(Code.NotFound);
  });

  it("does not hold one identity's flood against another", async () => {
    const flooder = await viamClient(unique("flooder"), "some-host");
    await burst(60, () => flooder.callUpdate({ uuid: NO_SUCH_CALL, update: { case: "done", value: true } }));
    const bystander = await viamClient(unique("bystander"), "some-host");
    expect(await codeOf(bystander.callUpdate({ uuid: NO_SUCH_CALL, update: { case: "done", value: true } }))).toBe(Code.NotFound);
  });

  it("counts Viam Calls", async () => {
    const caller = await viamClient(unique("flooder"), unique("nobody"));
    const counts = await burst(60, async () => { for await (const _ of caller.call({ sdp: "offer" })) { /* none */ } });
    expect(counts.get(Code.NotFound)).toBeGreaterThanOrEqual(REQUEST_BURST - RATE_LEASE_TOKENS);
    expect(counts.get(Code.ResourceExhausted)).toBeGreaterThan(0);
  });

  it("counts Voice Connect streams", async () => {
    const identity = unique("flooder");
    const counts = await burst(60, async () => {
      const voice = await openVoice(identity);
      voice.close();
      await voice.next();
    });
    expect(counts.get("ok")).toBeGreaterThanOrEqual(REQUEST_BURST - RATE_LEASE_TOKENS);
    expect(counts.get(Code.ResourceExhausted)).toBeGreaterThan(0);
  });

  it("counts SIP RPCs of an authenticated account", async () => {
    const { sip } = await sipAccount("flooder");
    const counts = await burst(60, () => sip.getSipStatus({}));
    expect(counts.get("ok")).toBeGreaterThanOrEqual(REQUEST_BURST - RATE_LEASE_TOKENS);
    expect(counts.get(Code.ResourceExhausted)).toBeGreaterThan(0);
  });
});

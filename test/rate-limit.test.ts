// Requests per identity per second (worker/rate-limit.ts, durable-objects/token-bucket.ts): the
// bucket's arithmetic as properties, and the limit at each door that applies it.
import { Code } from "@connectrpc/connect";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fullBucket, takeTokens } from "../model/token-bucket";
import { codeOf, errorOf, openVoice, sipAccount, sleep, unique, viamClient } from "./door-clients";

const NO_SUCH_CALL = "00000000-0000-4000-8000-000000000000";
// The limits as model/limits.ts states them, written out so that changing one there fails a test:
// 20 requests a second per identity, a burst of 40, leased to an isolate 10 at a time.
const REQUESTS_PER_SECOND = 20;
const REQUEST_BURST = 40;
const RATE_LEASE_TOKENS = 10;

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
  it("starts an identity with a burst of 40: a lease of 41 gets 40", async () => {
    const host = env.HOSTS.getByName(unique("leaser"));
    expect((await host.lease(41)).granted).toBe(40);
  });

  it("refills 20 tokens a second: half a second after the burst is spent, a lease gets 10 (no more than the time allows)", async () => {
    const host = env.HOSTS.getByName(unique("leaser"));
    const before = Date.now();
    expect((await host.lease(40)).granted).toBe(40);
    await sleep(500);
    const { granted } = await host.lease(40);
    expect(granted).toBeGreaterThanOrEqual(10);
    expect(granted).toBeLessThanOrEqual(Math.floor(((Date.now() - before) / 1000) * 20));
  });

  it(`hands out the ${REQUEST_BURST}-token burst, then refuses with the time until the next token`, async () => {
    const host = env.HOSTS.getByName(unique("leaser"));
    const started = Date.now();
    let granted = 0;
    for (let i = 0; i < REQUEST_BURST / RATE_LEASE_TOKENS; i++) granted += (await host.lease(RATE_LEASE_TOKENS)).granted;
    expect(granted).toBe(REQUEST_BURST);
    let refused = await host.lease(RATE_LEASE_TOKENS);
    for (; refused.granted > 0; refused = await host.lease(RATE_LEASE_TOKENS)) granted += refused.granted;
    // On top of the burst, only what flowed back in meanwhile was handed out.
    expect(granted).toBeLessThanOrEqual(REQUEST_BURST + Math.ceil(((Date.now() - started) / 1000) * REQUESTS_PER_SECOND));
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(1000 / REQUESTS_PER_SECOND);
  });
});

/** Fires `n` requests at once; what they ended with, and how long the flood took (s). */
/** `n` requests, at most `concurrency` in flight at once. */
async function flood(n: number, admittedCode: Code | "ok", request: () => Promise<unknown>, concurrency = n) {
  const started = Date.now();
  const codes: (Code | "ok")[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, concurrency) }, async () => {
    while (next < n) {
      next++;
      codes.push(await codeOf(request()));
    }
  }));
  const elapsed = (Date.now() - started) / 1000;
  const admitted = codes.filter((c) => c === admittedCode).length;
  const refused = codes.filter((c) => c === Code.ResourceExhausted).length;
  expect(admitted + refused, `codes: ${[...new Set(codes)].join(", ")}`).toBe(n);
  return { admitted, refused, elapsed };
}

/** The bound itself, whatever the machine's speed: the burst plus what flowed in meanwhile, and
 * refusals whenever the flood was faster than the bucket refills. */
function expectLimited(f: { admitted: number; refused: number; elapsed: number }, n: number) {
  expect(f.admitted).toBeGreaterThanOrEqual(Math.min(n, REQUEST_BURST - RATE_LEASE_TOKENS));
  expect(f.admitted).toBeLessThanOrEqual(REQUEST_BURST + Math.ceil(f.elapsed * REQUESTS_PER_SECOND));
  if (f.elapsed < (n - REQUEST_BURST - RATE_LEASE_TOKENS) / REQUESTS_PER_SECOND) expect(f.refused).toBeGreaterThan(0);
}

const update = { uuid: NO_SUCH_CALL, update: { case: "done" as const, value: true } };

describe(`${REQUESTS_PER_SECOND} requests a second per identity, burst ${REQUEST_BURST}, at the doors`, () => {
  it("refuses a flood of CallUpdates from one identity with resource_exhausted, and admits the burst", async () => {
    const flooder = await viamClient(unique("flooder"), "some-host");
    // Admitted requests reach the call (there is none: not_found); the rest are refused.
    expectLimited(await flood(150, Code.NotFound, () => flooder.callUpdate(update)), 150);
  });

  it("names the limit and when to retry, and admits the identity again once tokens flowed back", async () => {
    const identity = unique("flooder");
    const flooder = await viamClient(identity, "some-host");
    let err;
    for (let i = 0; i < 20 && !err; i++) {
      await flood(60, Code.NotFound, () => flooder.callUpdate(update));
      err = await errorOf(flooder.callUpdate(update)).then((e) => (e.code === Code.ResourceExhausted ? e : undefined));
    }
    expect(err?.rawMessage).toMatch(new RegExp(`${identity} makes more than ${REQUESTS_PER_SECOND} requests a second; retry in \\d+ ms`));
    await sleep(1_000);
    expect(await codeOf(flooder.callUpdate(update))).toBe(Code.NotFound);
  });

  it("does not hold one identity's flood against another", async () => {
    const flooder = await viamClient(unique("flooder"), "some-host");
    await flood(150, Code.NotFound, () => flooder.callUpdate(update));
    const bystander = await viamClient(unique("bystander"), "some-host");
    expect(await codeOf(bystander.callUpdate(update))).toBe(Code.NotFound);
  });

  it("counts Viam Calls", async () => {
    const caller = await viamClient(unique("flooder"), unique("nobody"));
    expectLimited(await flood(150, Code.NotFound, async () => { for await (const _ of caller.call({ sdp: "offer" })) { /* none */ } }), 150);
  });

  it("counts Voice Connect streams", async () => {
    const identity = unique("flooder");
    expectLimited(await flood(120, "ok", async () => {
      const voice = await openVoice(identity);
      voice.close();
      await voice.next();
      // Under the cap of answerer streams per host (16), so that only the rate refuses.
    }, 8), 120);
  });

  it("counts SIP RPCs of an authenticated account", async () => {
    const { sip } = await sipAccount("flooder");
    expectLimited(await flood(150, "ok", () => sip.getSipStatus({})), 150);
  });
});

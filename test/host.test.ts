import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { OFFER_ACK_TIMEOUT_MS } from "../worker/limits";
import { unique } from "./door-clients";

/** Long enough for the live answerer to still be waiting when the hand-over comes. */
const WAIT_MS = OFFER_ACK_TIMEOUT_MS + 8_000;

describe("HostObject offer hand-over", () => {
  it("offers a call its answerer never acknowledged to another live answerer after the ack timeout", async () => {
    const host = env.HOSTS.getByName(unique("host"));
    const callId = crypto.randomUUID();
    // RPCs to one object arrive in the order sent: the stale answerer waits longest, so it is
    // handed the call first, as a stream whose client vanished mid-wait would be.
    const stale = host.next("stale-answerer", "viam", WAIT_MS);
    const live = host.next("live-answerer", "viam", WAIT_MS);
    expect((await host.enqueue(callId, Date.now() + 10_000)).ok).toBe(true);
    expect(await stale).toBe(callId);
    const handedOut = Date.now();

    expect(await live).toBe(callId);
    expect(Date.now() - handedOut).toBeGreaterThanOrEqual(OFFER_ACK_TIMEOUT_MS - 100);
  });

  it("offers an acknowledged call to no other answerer", async () => {
    const host = env.HOSTS.getByName(unique("host"));
    const callId = crypto.randomUUID();
    const first = host.next("first-answerer", "viam", WAIT_MS);
    const second = host.next("second-answerer", "viam", OFFER_ACK_TIMEOUT_MS + 1_000);
    await host.enqueue(callId, Date.now() + 10_000);
    expect(await first).toBe(callId);
    await host.ack(callId);
    expect(await second).toBeNull();
  });
});

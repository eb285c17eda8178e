// The webhook queue's consumer (worker/webhook-delivery.ts) in the Workers runtime: a refused
// delivery is retried on the backoff schedule with the same message, and a message of an unknown
// shape is dropped rather than retried forever. (Deliveries that succeed, to a receiver built on
// livekit-server-sdk's WebhookReceiver, are proven end to end in test/e2e/operators.e2e.test.ts.)
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { WebhookDelivery } from "../durable-objects/operator-outbox";
import { webhookQueue } from "../worker/webhook-delivery";

/** Nothing listens on the discard port of loopback: every POST there fails. */
const DOWN = "http://127.0.0.1:9/livekit-webhook";

const delivery = (id: string): WebhookDelivery => ({ v: 1, url: DOWN, id, event: "room_started", body: "{}" });

describe("webhook delivery", () => {
  it("retries every refused delivery, each message on its own", async () => {
    const batch = createMessageBatch<WebhookDelivery>("operator-webhooks", [
      { id: "m1", timestamp: Date.now(), attempts: 1, body: delivery("EV_first") },
      { id: "m3", timestamp: Date.now(), attempts: 3, body: delivery("EV_third") },
    ]);
    const ctx = createExecutionContext();
    await webhookQueue(batch, env);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks).toEqual([]);
    // (The test harness records which messages were retried, not their delays: retryDelaySeconds,
    // tested in room-service.test.ts, gives them: 2 s for m1, 18 s for m3.)
    expect(result.retryMessages.map((m) => m.msgId)).toEqual(["m1", "m3"]);
  });

  it("drops a message it cannot read instead of retrying it", async () => {
    const batch = createMessageBatch<unknown>("operator-webhooks", [
      { id: "junk", timestamp: Date.now(), attempts: 1, body: { hello: "world" } },
    ]);
    const ctx = createExecutionContext();
    await webhookQueue(batch as MessageBatch<WebhookDelivery>, env);
    expect((await getQueueResult(batch, ctx)).explicitAcks).toEqual(["junk"]);
  });
});

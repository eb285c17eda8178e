// The consumer of the webhook queue: POSTs each event to its URL as livekit-server does
// (protocol/webhook/url_notifier.go), so a receiver hands the raw body and the Authorization header
// to livekit-server-sdk's WebhookReceiver.receive unchanged:
// - the body is the WebhookEvent as JSON, sent as `application/webhook+json`;
// - `Authorization` is the bare JWT (no "Bearer"), HS256 with LIVEKIT_API_SECRET, `iss` = LIVEKIT_API_KEY,
//   valid 5 minutes, whose `sha256` claim is the base64 SHA-256 of the body.
// A refusal (no 2xx, or no answer within WEBHOOK_POST_TIMEOUT_MS) is retried with the same body and
// event id: the first retry after WEBHOOK_FIRST_RETRY_S, each later one WEBHOOK_RETRY_FACTOR times
// longer; after WEBHOOK_MAX_RETRIES the queue moves the message to the dead-letter queue.
import { sign } from "hono/jwt";
import type { WebhookDelivery } from "../durable-objects/operator-outbox";
import {
  WEBHOOK_FIRST_RETRY_S, WEBHOOK_MAX_RETRY_S, WEBHOOK_POST_TIMEOUT_MS, WEBHOOK_RETRY_FACTOR, WEBHOOK_TOKEN_TTL_S,
} from "../model/limits";

export const WEBHOOK_CONTENT_TYPE = "application/webhook+json";

/** The Authorization header for `body`: what livekit-server's AccessToken.SetSha256 signs. */
export async function webhookAuthorization(body: string, apiKey: string, apiSecret: string, now = Date.now()): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body));
  const sha256 = btoa(String.fromCharCode(...new Uint8Array(digest)));
  const iat = Math.floor(now / 1000);
  return sign({ iss: apiKey, nbf: iat, iat, exp: iat + WEBHOOK_TOKEN_TTL_S, sha256 }, apiSecret, "HS256");
}

/** Seconds before retry `attempt` (1 = the first retry): 2, 6, 18, 54 … up to WEBHOOK_MAX_RETRY_S. */
export function retryDelaySeconds(attempt: number): number {
  return Math.min(WEBHOOK_MAX_RETRY_S, WEBHOOK_FIRST_RETRY_S * WEBHOOK_RETRY_FACTOR ** Math.max(0, attempt - 1));
}

/** Posts one event; true when the receiver took it (2xx). */
export async function deliverWebhook(delivery: WebhookDelivery, env: Env): Promise<boolean> {
  try {
    const response = await fetch(delivery.url, {
      method: "POST",
      headers: {
        "content-type": WEBHOOK_CONTENT_TYPE,
        authorization: await webhookAuthorization(delivery.body, env.LIVEKIT_API_KEY, env.LIVEKIT_API_SECRET),
        "user-agent": "LiveKit",
      },
      body: delivery.body,
      signal: AbortSignal.timeout(WEBHOOK_POST_TIMEOUT_MS),
    });
    // Nobody reads the receiver's answer; not draining it would hold the connection.
    await response.body?.cancel();
    if (response.ok) return true;
    console.warn("webhook refused", { url: delivery.url, id: delivery.id, event: delivery.event, status: response.status });
  } catch (err) {
    console.warn("webhook not delivered", { url: delivery.url, id: delivery.id, event: delivery.event, err: String(err) });
  }
  return false;
}

/** The Worker's `queue` handler for OPERATOR_WEBHOOKS. Deliveries in a batch go out in parallel;
 * each is acknowledged or retried on its own. */
export async function webhookQueue(batch: MessageBatch<WebhookDelivery>, env: Env): Promise<void> {
  await Promise.all(batch.messages.map(async (message) => {
    const delivery = message.body;
    if (delivery?.v !== 1) {
      console.error("unknown webhook message dropped", { id: message.id });
      message.ack();
      return;
    }
    if (await deliverWebhook(delivery, env)) message.ack();
    else message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
  }));
}

// Worker entry. workerd accepts only handlers and Durable Object classes as exports.
import type { WebhookDelivery } from "../durable-objects/operator-outbox";
import { fetchWorker } from "./app";
import { webhookQueue } from "./webhook-delivery";

export { CallObject } from "../durable-objects/call";
export { HostObject } from "../durable-objects/host";
export { AudioRoom } from "../durable-objects/audio-room";
export { LiveKitRoom } from "../durable-objects/livekit-room";
export { SipAccount } from "../durable-objects/sip-account";
export { RoomDirectory } from "../durable-objects/room-directory";

// `queue`: the operator webhooks' consumer (worker/webhook-delivery.ts).
export default { fetch: fetchWorker, queue: webhookQueue } satisfies ExportedHandler<Env, WebhookDelivery>;

// Worker entry. workerd accepts only handlers and Durable Object classes as exports.
import { app } from "./app";

export { CallObject } from "../durable-objects/call";
export { HostObject } from "../durable-objects/host";
export { AudioRoom } from "../durable-objects/audio-room";
export { LiveKitRoom } from "../durable-objects/livekit-room";
export { SipAccount } from "../durable-objects/sip-account";

export default { fetch: app.fetch } satisfies ExportedHandler<Env>;

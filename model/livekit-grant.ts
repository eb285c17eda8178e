// What a verified LiveKit access token grants (worker/livekit-token.ts verifies it; the room's
// rules in livekit-model.ts read it).
import type { TrackSource } from "../proto/gen/livekit_models_pb";

/** What a verified token lets its holder do in one room. */
export interface LiveKitGrant {
  identity: string;
  room: string;
  name: string;
  metadata: string;
  attributes: Record<string, string>;
  canPublish: boolean;
  /** Sources it may publish; empty means all (livekit-server's rule). */
  canPublishSources: TrackSource[];
  canSubscribe: boolean;
  canPublishData: boolean;
  canUpdateOwnMetadata: boolean;
}

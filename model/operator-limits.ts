// Limits of the operator interface (webhooks, the room directory, RoomService). Kept beside
// limits.ts while that file is being edited by others; the same rule holds: each value says why.

/** The first retry of a refused webhook comes this soon (LiveKit's notifier retries within
 * seconds too): a receiver that restarts is caught up almost at once. */
export const WEBHOOK_FIRST_RETRY_S = 2;
/** Each later retry waits this many times longer (2, 6, 18, 54 s … ), up to WEBHOOK_MAX_RETRY_S. */
export const WEBHOOK_RETRY_FACTOR = 3;
/** Cloudflare Queues accepts delays up to 12 h; 15 min keeps a receiver that is down for a night
 * from waiting hours for its backlog once it is back. */
export const WEBHOOK_MAX_RETRY_S = 900;
/** Deliveries tried before a message goes to the dead-letter queue (wrangler.toml `max_retries`,
 * which must match): 12 retries on the schedule above span about 2 h. */
export const WEBHOOK_MAX_RETRIES = 12;
/** A receiver that has not answered in this time counts as down (livekit-server's client waits 5 s
 * before its retry; a Worker's subrequest is cheap to keep waiting a little longer). */
export const WEBHOOK_POST_TIMEOUT_MS = 10_000;
/** A webhook's JWT lives 5 minutes, as livekit-server's (webhook/url_notifier.go SetValidFor). */
export const WEBHOOK_TOKEN_TTL_S = 300;

/** Events an object writes to its outbox are sent at once; if that fails (or the object is reset
 * before it finishes), its alarm sends them again after this long. */
export const OUTBOX_RETRY_MS = 5_000;

/** Directory shards: rooms are spread over this many objects by a hash of their name, so no one
 * object takes every room's writes (bench/room-directory-bench.mjs measures what one takes).
 * ListRooms asks each shard once. Changing it moves rooms between shards: only on a fresh
 * directory (every shard's rooms expire with their rooms). */
export const ROOM_DIRECTORY_SHARDS = 16;
/** A finished room's row stays this long as a tombstone, so a delayed, repeated update of the
 * room (at-least-once) cannot bring it back into the list. */
export const ROOM_TOMBSTONE_MS = 60 * 60 * 1000;
/** Rooms ListRooms returns at most: a Twirp response is one message, and LiveKit's own server
 * lists from one Redis hash the same way. */
export const MAX_LISTED_ROOMS = 10_000;

// Every bound the service enforces, in one place, each with the reason for its value.
// The README's "Limits" table is written from this file.

/** Largest Connect/gRPC-web message accepted or sent. SDPs with many candidates are ~10 KiB;
 * 64 KiB leaves room for long SDPs (simulcast, many codecs) while keeping a hostile client cheap. */
export const MAX_RPC_MESSAGE_BYTES = 64 * 1024;

/** Longest a unary or streaming RPC may be asked to run (Connect `timeout` header is capped to this).
 * A signaling exchange is seconds long; ten minutes covers any stream a client keeps open. */
export const MAX_RPC_TIMEOUT_MS = 10 * 60 * 1000;

/** Viam's upstream offer deadline (goutils `defaultOfferDeadline`): a host that is online but does
 * not answer within this time makes the Call fail with deadline_exceeded. */
export const OFFER_DEADLINE_MS = 10_000;

/** Heartbeat interval on a Viam Answer stream (upstream value), and the longest an answerer's
 * long-poll for work blocks before it reports in again. */
export const ANSWERER_HEARTBEAT_MS = 15_000;

/** An answerer counts as online this long after its last poll: one heartbeat interval plus slack
 * for the round trip, so a host between two polls is never reported as offline. */
export const ANSWERER_LEASE_MS = ANSWERER_HEARTBEAT_MS + 5_000;

/** An offer handed to an answerer must be acknowledged within this time, or it goes back to the
 * queue for another answerer: a stream whose client vanished must not swallow the offer. */
export const OFFER_ACK_TIMEOUT_MS = 2_000;

/** Longest one long-poll on a call object waits for new signals before the door polls again;
 * bounded so a vanished door's poll does not pin the object in memory. */
export const SIGNAL_POLL_WAIT_MS = 10_000;

/** Signals (offer, answer, candidates) not collected by their recipient within this time are
 * dropped by the call's alarm, and the call ends: no peer waits longer than this on a dead party. */
export const SIGNAL_TTL_MS = 60_000;

/** Undelivered signals queued for one side of a call. A trickling browser sends 5–30 candidates,
 * usually read as they come; 128 waiting at once is far above any honest client and caps the
 * storage a call whose reader is away can hold. */
export const MAX_QUEUED_SIGNALS = 128;

/** ICE candidates one side may send in one call (honest peers send tens). */
export const MAX_CANDIDATES_PER_SIDE = 200;

/** Calls waiting for one host at once; past this a new Call gets resource_exhausted. */
export const MAX_PENDING_CALLS_PER_HOST = 64;

/** A finished call's record (status history) is kept this long, then its object deletes itself. */
export const CALL_RETENTION_MS = 60 * 60 * 1000;

/** Upper bound on a call object's life even if nobody hangs up, so storage never leaks. */
export const CALL_MAX_AGE_MS = 12 * 60 * 60 * 1000;

/** Identities, host names and room names: short, printable, URL-safe. */
export const MAX_NAME_LENGTH = 128;
export const NAME_PATTERN = /^[A-Za-z0-9._:@-]{1,128}$/;

/** Viam allows several hosts in rpc-host for Answer/OptionalWebRTCConfig; bound the fan-out. */
export const MAX_ANSWER_HOSTS = 5;

/** Lifetime of TURN credentials minted from TURN_SECRET (coturn's REST scheme). Long enough for a
 * call set-up and ICE restarts, short enough that a leaked credential is soon worthless. */
export const TURN_CREDENTIAL_TTL_S = 3600;

/** Largest binary audio frame (seed 003) the relay accepts; a larger one closes its socket with
 * 1009. It must hold one chunk of the richest format at a sane chunk length: 100 ms of 48 kHz
 * stereo float32 is 48 000 × 0.1 × 2 × 4 = 38 400 bytes of samples plus the 6-byte header.
 * 64 KiB leaves headroom for that and for a handshake's optional data, and stays far below the
 * platform's message limit, so one client cannot make the room buffer megabytes per frame. */
export const MAX_AUDIO_FRAME_BYTES = 64 * 1024;

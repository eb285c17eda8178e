// Every bound the service enforces, in one place, each with the reason for its value.
// docs/limits.md's table is written from this file.

/** Largest Connect/gRPC-web message accepted or sent. SDPs with many candidates are ~10 KiB;
 * 64 KiB leaves room for long SDPs (simulcast, many codecs) while keeping a hostile client cheap. */
export const MAX_RPC_MESSAGE_BYTES = 64 * 1024;

/** A Connect request body that connect left unread (a message over its read limit, a refused
 * content type) is read to its end and thrown away, up to this many bytes, before the answer is
 * complete: an HTTP/1.1 client sends its whole body before it reads the answer, and workerd cuts a
 * connection whose request body is left unread, so without it the client gets a network error, not
 * resource_exhausted. Past this the body is cancelled instead (the client may then see the
 * connection cut): 16 MiB is four times the largest request any method accepts (SIP's WAV list,
 * 4 MiB + 64 KiB), and reading and dropping it costs the isolate time on the network, not memory. */
export const MAX_DRAINED_REQUEST_BYTES = 16 * 1024 * 1024;

/** Longest a unary or streaming RPC may be asked to run (Connect `timeout` header is capped to this).
 * A signaling exchange is seconds long; ten minutes covers any stream a client keeps open. */
export const MAX_RPC_TIMEOUT_MS = 10 * 60 * 1000;

/** Viam's upstream offer deadline (goutils `defaultOfferDeadline`): a host that is online but does
 * not answer within this time makes the Call fail with deadline_exceeded. */
export const OFFER_DEADLINE_MS = 10_000;

/** Heartbeat interval on a Viam Answer stream (upstream value). The door sends them itself while
 * it waits: a waiting answerer's host object sleeps meanwhile. */
export const ANSWERER_HEARTBEAT_MS = 15_000;

/** A host whose last answerer stream just ended still counts as online this long: a Viam
 * answerer reopens its stream after each call, and a Voice client after each call too, within
 * milliseconds; a call in that gap waits in line instead of failing with not_found. */
export const ANSWERER_REOPEN_GRACE_MS = 5_000;

/** How long the callee's door waits for the caller's done after the caller's stream ended without
 * it. A Viam caller's Call stream ends once the callee is done, and the SDK sends its own done by
 * CallUpdate when its ICE gathering completes; a caller that neither sends it nor reconnects in
 * this time has gone (tab closed, client aborted), and the host's Answer stream ends with an error
 * stage so the machine opens a fresh one. */
export const CALLER_DONE_WAIT_MS = 10_000;

/** Reconnects a door makes to an object whose socket broke under it (a reset, a deploy) before
 * its stream fails. */
export const SPINE_RECONNECTS = 5;


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
/** NAME_PATTERN in words, for the message that refuses a name. */
export const NAME_RULE = `1–${MAX_NAME_LENGTH} of A-Z a-z 0-9 . _ : @ -`;

/** Viam allows several hosts in rpc-host for Answer/OptionalWebRTCConfig; bound the fan-out. */
export const MAX_ANSWER_HOSTS = 5;

/** Lifetime of TURN credentials minted from TURN_SECRET (coturn's REST scheme). Long enough for a
 * call set-up and ICE restarts, short enough that a leaked credential is soon worthless. */
export const TURN_CREDENTIAL_TTL_S = 3600;

/** Lifetime of a token from `POST /dev/token` (DEV_TOKENS=1 only): as `npm run token`'s default,
 * an hour covers a demo session, and a token copied out of a dev page soon stops working. */
export const DEV_TOKEN_TTL_S = 3600;

/** Largest binary audio frame (seed 003) the relay accepts; a larger one closes its socket with
 * 1009. It must hold one chunk of the richest format at a sane chunk length: 100 ms of 48 kHz
 * stereo float32 is 48 000 × 0.1 × 2 × 4 = 38 400 bytes of samples plus the 6-byte header.
 * 64 KiB leaves headroom for that and for a handshake's optional data, and stays far below the
 * platform's message limit, so one client cannot make the room buffer megabytes per frame. */
export const MAX_AUDIO_FRAME_BYTES = 64 * 1024;

/** A SIP call rings this long before it fails (incoming_call_failed / outgoing_call_failed): the
 * common no-answer timeout of SIP user agents and PBXs. It must stay below SIGNAL_TTL_MS, or the
 * call object would end a still-ringing call first because nobody collected its offer. */
export const SIP_RING_TIMEOUT_MS = 30_000;

/** PBKDF2-SHA-256 iterations for SIP account passwords. workerd refuses more than 100 000; OWASP
 * asks for more, so we take the platform's maximum (with a 16-byte random salt per account). */
export const SIP_PBKDF2_ITERATIONS = 100_000;

/** Longest SIP password accepted: far above any passphrase, and it bounds the hashing input. */
export const MAX_SIP_PASSWORD_BYTES = 1024;

/** Headers a StartCall/TransferCall may carry, and their sizes. Every status of the call repeats
 * them, so they bound each status (16 × 576 B ≈ 9 KiB) and with it the stored history. */
export const MAX_SIP_HEADERS = 16;
export const MAX_SIP_HEADER_KEY_BYTES = 64;
export const MAX_SIP_HEADER_VALUE_BYTES = 512;

/** Statuses kept per account (oldest dropped first). 256 worst-case statuses (~9.5 KiB each) fit
 * in SIP_MAX_RESPONSE_BYTES, so GetSipStatusHistory can always answer with all it keeps. */
export const MAX_SIP_STATUS_HISTORY = 256;
export const SIP_MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

/** WAV files one PlayWavFiles may carry, and their total size (also the most audio one account may
 * have queued). 4 MiB is over two minutes of 16 kHz 16-bit mono; after conversion to the call's
 * format (at most 4× larger: 16-bit mono to float32 stereo) it stays far below a Durable Object's
 * 128 MB of memory. Past either bound: resource_exhausted. */
export const MAX_WAV_FILES = 32;
export const MAX_WAV_TOTAL_BYTES = 4 * 1024 * 1024;

/** Converted audio one SIP account may have waiting to play: the WAV bound times the largest
 * growth a conversion can cause (16-bit mono to float32 stereo is 4×). */
export const MAX_SIP_QUEUED_AUDIO_BYTES = 4 * MAX_WAV_TOTAL_BYTES;

/** How often a SIP caller's audio leg re-sends its handshake while the callee's socket is not yet
 * in the call's room (user-not-found): quick enough that audio flows within half a second of the
 * callee connecting, slow enough to cost the room two small frames a second. */
export const SIP_AUDIO_DIAL_RETRY_MS = 500;

/** After a call connects, the caller's audio leg keeps dialing this long for a callee whose audio
 * comes up late (an auto-answering SIP account opens its leg as it answers); a callee that never
 * joins the room (a Voice client with WebRTC media) stops costing handshakes after it. */
export const SIP_AUDIO_DIAL_AFTER_CONNECT_MS = 30_000;

/** PlayWavFiles waits this long for the call's audio to be paired before failed_precondition. */
export const SIP_AUDIO_PAIRING_WAIT_MS = 5_000;

/** Audio in one data packet when the call's chunk size does not say otherwise: 20 ms is the
 * packetization of RTP telephony (G.711, Opus defaults), so a client's jitter buffer is used to it. */
export const SIP_AUDIO_PACKET_MS = 20;

/** A soft hangup lets queued WAV audio finish first, but never for longer than this. */
export const SIP_SOFT_HANGUP_MAX_MS = 60_000;

/** LiveKit rooms are peer to peer: each participant's publisher connection is paired with the
 * other's subscriber connection, which only works for two. A third is refused with JOIN_FAILURE. */
export const LIVEKIT_MAX_PARTICIPANTS = 2;

/** How long a participant alone in a LiveKit room waits for a peer before the room sends it a
 * leave (JOIN_FAILURE). livekit-client's room.connect() resolves only once its publisher
 * connection is connected and gives up after peerConnectionTimeout (15 s by default, counted from
 * the JoinResponse); the leave must arrive before that to tell the app why, with 3 s to spare
 * for latency and alarm delay. */
export const LIVEKIT_PEER_WAIT_MS = 12_000;

/** A LiveKit session whose socket closed without a leave keeps its place this long for a resume
 * (`reconnect=1`); one the room asked to rejoin (leave RECONNECT) has as long to come back.
 * livekit-client retries after 0, 0.3, 1.2, 2.7, 4.8 and 7 s: 20 s covers its first six tries. */
export const LIVEKIT_RESUME_WINDOW_MS = 20_000;

/** A LiveKit participant that rejoins (a full reconnect) is paired with its peer no sooner than
 * this after its join: livekit-client 2.23 waits this long (minReconnectWait) before it counts
 * its reconnect as finished, and silently drops the peer's track events that arrive earlier but
 * after it reported Reconnected. Its rejoin cannot complete sooner anyway. */
export const LIVEKIT_RESTART_SETTLE_MS = 2_000;

/** Ping cadence told to livekit-client (livekit-server's own values): it pings every 5 s and
 * reconnects after 15 s without any message. Each ping wakes the room object: its payload is a
 * timestamp, so no WebSocket auto-response can answer it. */
export const LIVEKIT_PING_INTERVAL_S = 5;
export const LIVEKIT_PING_TIMEOUT_S = 15;

/** Largest LiveKit signalling frame accepted; a larger one closes its socket with 1009. An offer
 * with audio, simulcast video and data channels is about 10 KiB of SDP. */
export const LIVEKIT_MAX_SIGNAL_BYTES = 64 * 1024;

/** Tracks one LiveKit participant may publish (microphone, camera, screen and screen audio are
 * four); bounds what a room stores per participant. */
export const LIVEKIT_MAX_TRACKS_PER_PARTICIPANT = 8;

/** Publisher ICE candidates kept for a participant still waiting for a peer, handed over when one
 * joins. A browser gathers a few per network interface; 64 is far above that. */
export const LIVEKIT_MAX_PARKED_CANDIDATES = 64;

/** Clock skew tolerated on a LiveKit token's nbf: livekit-server-sdk stamps nbf = now on the
 * minting host, whose clock may run ahead of the edge's. livekit-server allows one minute too. */
export const LIVEKIT_TOKEN_NBF_LEEWAY_S = 60;

/** Requests one identity may make through the doors that act for it (Viam Call and CallUpdate,
 * Voice Connect, every SIP RPC but an unauthenticated RegisterAccount), as a token bucket:
 * REQUESTS_PER_SECOND tokens a second, at most REQUEST_BURST saved up. The largest honest burst is
 * a Viam dial: one Call, a CallUpdate per trickled candidate (5–30) and a done, so 40; 20 a second
 * sustained is a client redialing every 50 ms, far above any person. Past it: resource_exhausted. */
export const REQUESTS_PER_SECOND = 20;
export const REQUEST_BURST = 40;

/** A Worker isolate takes this many tokens at once from an identity's bucket (HostObject.lease)
 * and spends them locally: one Durable Object RPC per ten requests, not one per request (a lease
 * often wakes the identity's object, which costs more than the request it admits: it was 9 % of
 * the Worker runtime's profile of a Viam setup at five, and 11 % at ten tokens kept 10 s, where a
 * caller dialing every few seconds leased on every other dial). A token is taken from the bucket
 * when leased, so holding it longer never lets more through on average: over any stretch, what
 * an identity gets admitted is at most what its bucket handed out. What the time to live bounds is
 * the burst kept in isolates: at most RATE_LEASE_TOKENS in each isolate that leased within it, and
 * the bucket (20 a second) can fill at most 2 leases a second beyond its burst of 40, so a client
 * that reaches many isolates could save up 10 × (4 + 2 × 60) requests in the worst case; an honest
 * client, in one or a few isolates, never comes near. A minute lets a client that dials every few
 * seconds (a Viam dial is a Call and a CallUpdate) lease once per five dials, and unspent tokens
 * are dropped, never returned. One isolate holds at most 10 of a client's 40-token burst; the
 * bucket refills 10 in half a second. */
export const RATE_LEASE_TOKENS = 10;
export const RATE_LEASE_TTL_MS = 60_000;

/** Identities whose leases (and refusals) one isolate remembers; the least recently used goes
 * first. 10 000 small entries is well under a megabyte of the isolate's 128 MB. */
export const RATE_LEASE_CACHE_SIZE = 10_000;

/** Verified tokens one isolate remembers (worker/auth.ts), the oldest dropped first: every client
 * online through this isolate, at a few hundred bytes each, a few MB of the isolate's 128 MB. */
export const MAX_VERIFIED_TOKENS = 10_000;

/** A relay socket that has sent the keep-alive "ping" at least once has shown that it keeps its
 * connection alive (the demo page pings every 2 s); one that then shows no sign of life, neither a
 * ping nor a frame, for this long is taken for dead although its connection never closed (a closed
 * laptop, a lost network: workerd reports a close only when the TCP connection actually ends). It
 * is closed with 1001 and its peer gets a drop. Sockets that never ping are not judged: seed 003
 * has no keep-alive of its own, and a listen-only client may send nothing for minutes. */
export const AUDIO_KEEPALIVE_LEASE_MS = 20_000;

/** A handshake nobody answers (accept, reject, counter-proposal) ends after this long with a drop
 * to both parties: the no-answer timeout of telephony (as SIP_RING_TIMEOUT_MS), so a caller whose
 * callee's socket is dead without a close is told instead of ringing forever. */
export const AUDIO_RING_TIMEOUT_MS = 30_000;

/** While a call is in progress in an audio room, the room's alarm sweeps its sockets this often
 * for the two deadlines above; a dead peer is found at most lease + sweep = 25 s after its last
 * sign of life. Between sweeps, keep-alive pings never wake the object (auto-response). */
export const AUDIO_SWEEP_MS = 5_000;

/** A socket's last-frame time is written to its attachment at most this often: one small write a
 * second instead of one per 20 ms data packet. The lease above is judged at this resolution. */
export const AUDIO_SEEN_RESOLUTION_MS = 1_000;

/** Longest life a client bearer token may claim (exp − iat, or exp − now without iat): a leaked
 * token stops working within a month however it was minted. `npm run token` mints an hour by
 * default; a device that stays online for longer renews its token. */
export const MAX_TOKEN_LIFETIME_S = 30 * 24 * 60 * 60;

/** A Viam Answer's caller_auth_token (worker/caller-proof.ts) lives until the call's offer
 * deadline, and never longer than this: it only has to prove who called while the host answers. */
export const CALLER_PROOF_MAX_TTL_S = 60;

/** Wrong SIP passwords tolerated (model/login-throttle.ts) before a wait: 5 from one client address
 * (a person mistyping tries a few times), 20 for one account from all addresses together, then one
 * more each FAILED_LOGIN_REFILL_MS. A guesser gets about 1 440 tries a day per address instead of
 * 50 a second; the owner, who logs in from an address known to the account or with a bearer token,
 * is never refused for someone else's failures. Past it: resource_exhausted. */
export const FAILED_LOGINS_PER_ADDRESS_BURST = 5;
export const FAILED_LOGINS_PER_ACCOUNT_BURST = 20;
export const FAILED_LOGIN_REFILL_MS = 60_000;

/** Failing addresses one account remembers, and addresses it knows its owner by (the most recent
 * successful logins): enough for a person's devices and networks. */
export const MAX_THROTTLED_ADDRESSES = 1_024;
export const MAX_KNOWN_LOGIN_ADDRESSES = 16;

/** Answerer streams open at once for one host, all doors together (Viam Answer, Voice Connect).
 * goutils runs a couple of answerers per machine process; 16 covers several processes answering
 * for one name, and bounds the sockets one token can make a host object hold. Past it:
 * resource_exhausted. */
export const MAX_ANSWERERS_PER_HOST = 16;

/** Audio relay rooms one identity may hold sockets in at once. A person is in one call, maybe a
 * second on hold; 8 leaves room for a bridge or a recorder, and one token can no longer open
 * hundreds of rooms. Past it the socket closes with 1008 and a reason. */
export const MAX_AUDIO_ROOMS_PER_IDENTITY = 8;

// ---- Operators: webhooks, the room directory, RoomService (docs/operators.md) -------------------

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

/** An object sends its operator events this long after the first change of a burst, so a call's
 * setup (start, answer, both dones, the end: well under this on one machine, a few hundred ms
 * across continents) goes to the room directory and the webhook queue in one or two sends, not one
 * per change: one directory RPC and one queue batch, and a call that ends within it costs the
 * directory no row at all. A webhook is late by no more than this, as livekit-server's own are
 * queued and sent asynchronously. */
export const OUTBOX_COALESCE_MS = 100;

/** A call's record keeps the operator events it sent until its next write drops them; when none
 * comes within this long, the call writes the record once more without them (an ended call at
 * once), so a later wake does not send them again. */
export const CALL_OUTBOX_PRUNE_MS = 1_000;

/** Directory shards: rooms are spread over this many objects by a hash of their name, so no one
 * object takes every room's writes (bench/room-directory-bench.mjs measures what one takes).
 * ListRooms asks each shard once. Changing it moves rooms between shards: only on a fresh
 * directory (every shard's rooms expire with their rooms). */
export const ROOM_DIRECTORY_SHARDS = 16;
/** Finished rooms a directory shard remembers (in memory) to refuse a late, repeated update of
 * one: the window such a repeat can arrive in is a send cut short by a reset, a few seconds. */
export const DIRECTORY_RECENTLY_FINISHED = 10_000;
/** Rooms ListRooms returns at most: a Twirp response is one message, and LiveKit's own server
 * lists from one Redis hash the same way. */
export const MAX_LISTED_ROOMS = 10_000;

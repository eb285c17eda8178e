// WebSocket close codes (RFC 6455 §7.4.1) that the service sends, named once for every door and object.

/** A normal end: the call or the session is over. */
export const NORMAL_CLOSURE = 1000;
/** The server goes away, or a peer was judged dead. */
export const GOING_AWAY = 1001;
/** The bytes do not form a message of the protocol. */
export const PROTOCOL_ERROR = 1002;
/** A kind of frame the protocol does not carry (text where only binary is spoken, or the reverse). */
export const UNSUPPORTED_DATA = 1003;
/** A well-formed message holds a value that is not allowed. */
export const INVALID_PAYLOAD = 1007;
/** The client may not do this (a cap reached, not its room). */
export const POLICY_VIOLATION = 1008;
/** A message over the size limit. */
export const MESSAGE_TOO_BIG = 1009;

/** Codes a peer may report but no endpoint may send (RFC 6455 §7.4.1): `close()` throws on them. */
/** The close frame carried no code. */
export const NO_STATUS_RECEIVED = 1005;
/** The connection ended without a close frame. */
export const ABNORMAL_CLOSURE = 1006;
/** The TLS handshake failed. */
export const TLS_HANDSHAKE = 1015;

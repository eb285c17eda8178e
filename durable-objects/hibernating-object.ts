// Hibernation plumbing for every WebSocket Durable Object (the audio room now, the LiveKit room
// later), after partyserver's design: the platform handlers live here once and objects fill in
// hooks. Sockets are accepted with `ctx.acceptWebSocket`, so the runtime may evict the object
// between two messages while the sockets stay open; each wake runs the constructor again, so
// objects keep per-socket state in socket attachments, never in fields.
import { DurableObject } from "cloudflare:workers";
import { ABNORMAL_CLOSURE, NO_STATUS_RECEIVED, NORMAL_CLOSURE, TLS_HANDSHAKE } from "../model/close-codes";

/** Keep-alive text frames. The runtime answers "ping" with "pong" itself, without waking the
 * object, so heartbeats cost nothing and never reach `onMessage` (where an object may treat
 * other text frames as a protocol error). */
export const KEEPALIVE_PING = "ping";
export const KEEPALIVE_PONG = "pong";

/** RFC 6455 §5.5.1: a close frame's reason is at most 123 bytes of UTF-8. */
const MAX_CLOSE_REASON_BYTES = 123;
/** Codes a peer may report but no endpoint may send (RFC 6455 §7.4.1); `close()` throws on them. */
const RESERVED_CLOSE_CODES: ReadonlySet<number> = new Set([NO_STATUS_RECEIVED, ABNORMAL_CLOSURE, TLS_HANDSHAKE]);

export abstract class HibernatingObject<E = unknown> extends DurableObject<E> {
  constructor(ctx: DurableObjectState, env: E) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(KEEPALIVE_PING, KEEPALIVE_PONG));
  }

  /** Only WebSocket upgrades reach a hibernating object; everything else talks RPC. */
  async fetch(request: Request): Promise<Response> {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("expected a WebSocket upgrade", { status: 426, headers: { upgrade: "websocket" } });
    }
    const { 0: client, 1: server } = new WebSocketPair();
    const refusal = await this.onConnect(server, request);
    if (refusal) return refusal;
    return new Response(null, { status: 101, webSocket: client });
  }

  async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    await this.onMessage(ws, message);
  }

  async webSocketClose(ws: WebSocket, code: number, reason: string, wasClean: boolean): Promise<void> {
    await this.onClose(ws, code, reason, wasClean);
    // Complete the closing handshake with the client's own code. 1005 ("no code") and 1006
    // ("abnormal") are only ever reported, never sent; echoing them throws in workerd.
    closeSocket(ws, RESERVED_CLOSE_CODES.has(code) ? NORMAL_CLOSURE : code, reason);
  }

  async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    console.warn("websocket error", { error: String(error) });
    // A failed socket is gone as surely as a closed one; 1006 is what RFC 6455 reports then.
    await this.onClose(ws, ABNORMAL_CLOSURE, "", false);
  }

  async alarm(): Promise<void> {
    await this.onAlarm();
  }

  /** Accepts `ws` with `this.ctx.acceptWebSocket(ws, tags)` and sets its attachment, or returns a
   * Response refusing the upgrade. */
  protected abstract onConnect(ws: WebSocket, request: Request): Response | void | Promise<Response | void>;
  protected abstract onMessage(ws: WebSocket, message: string | ArrayBuffer): void | Promise<void>;
  /** The socket closed or failed. An error may be followed by a close for the same socket, so
   * this must be idempotent. */
  protected abstract onClose(ws: WebSocket, code: number, reason: string, wasClean: boolean): void | Promise<void>;
  /** The alarm set with `ctx.storage.setAlarm` fired. Objects that set none need not override it. */
  protected onAlarm(): void | Promise<void> {}
}

/**
 * One typed, versioned attachment per socket, behind one get/set pair. Attachments are read from a
 * cache keyed by socket object: deserializing on every message was a quarter of the audio relay's
 * cost. A wake from hibernation hands out new socket objects, so no cache entry outlives the memory
 * it describes; the attachment itself stays the truth. An attachment of another version (a socket
 * accepted before a deploy changed the shape) reads as undefined.
 */
export function socketAttachments<T extends { v: number }>(version: T["v"]) {
  const cache = new WeakMap<WebSocket, T | undefined>();
  return {
    get(ws: WebSocket): T | undefined {
      if (cache.has(ws)) return cache.get(ws);
      const stored = ws.deserializeAttachment() as { v?: number } | null;
      const attachment = stored?.v === version ? (stored as T) : undefined;
      cache.set(ws, attachment);
      return attachment;
    },
    set(ws: WebSocket, attachment: T): void {
      ws.serializeAttachment(attachment);
      cache.set(ws, attachment);
    },
  };
}

/** Closes `ws` from the server side. A socket that is already closed (the runtime may have
 * answered the client's close frame itself) is left alone: there is nobody left to tell. */
export function closeSocket(ws: WebSocket, code: number, reason: string): void {
  if (ws.readyState === WebSocket.CLOSED) return;
  try {
    ws.close(code, trimReason(reason));
  } catch (err) {
    console.warn("websocket close failed", { code, reason, error: String(err) });
  }
}

function trimReason(reason: string): string {
  const bytes = new TextEncoder().encode(reason);
  if (bytes.length <= MAX_CLOSE_REASON_BYTES) return reason;
  // Cut on a character boundary: `fatal: false` drops a split trailing sequence as U+FFFD, which
  // is then removed.
  return new TextDecoder().decode(bytes.subarray(0, MAX_CLOSE_REASON_BYTES)).replace(/\uFFFD+$/, "");
}

// The Hono app: CORS, health, and every front door.
import { cors as connectCors, type ConnectRouter } from "@connectrpc/connect";
import { Hono } from "hono";
import { cors } from "hono/cors";
import { audioRelay } from "./audio-relay";
import { callHistory, hangUpCall } from "./call-http";
import { createRouter, mountConnect, serveConnect } from "./connect-mount";
import { connectOverWebSocket } from "./connect-websocket";
import { devToken } from "./dev-tokens";
import type { AppEnv } from "./env";
import { liveKitSignaling } from "./livekit";
import { roomService } from "./room-service";
import { sip } from "./sip";
import { viamSignaling } from "./viam-signaling";
import { voice } from "./voice";
import { version } from "../package.json";

/** Every Connect service, registered once; the HTTP and WebSocket mounts share these handlers. */
export function routes(router: ConnectRouter): void {
  viamSignaling(router);
  voice(router);
  sip(router);
}

export const router = createRouter(routes);

/** Request headers the doors read besides Connect's own (Viam's rpc-host, heartbeats-allowed…). */
const APP_HEADERS = ["authorization", "rpc-host", "heartbeats-allowed", "voice-call-id"];

export const app = new Hono<AppEnv>();

/** Origins allowed to send credentialed requests (cookies), from CORS_CREDENTIAL_ORIGINS. */
function credentialOrigins(env: Env): string[] {
  return (env.CORS_CREDENTIAL_ORIGINS ?? "").split(",").map((o) => o.trim()).filter(Boolean);
}

// Every door authenticates with a bearer token (Authorization, or ?access_token= on WebSockets),
// never with a cookie, so any page may call it without credentials: `*`, no credentials flag. The
// Viam SDK asks for credentials only when it dials without a token, which no door accepts. Only
// origins configured in CORS_CREDENTIAL_ORIGINS get their origin echoed with credentials allowed.
app.use("*", cors({
  origin: (origin, c) => (origin && credentialOrigins(c.env).includes(origin) ? origin : "*"),
  credentials: false,
  allowMethods: [...connectCors.allowedMethods, "OPTIONS"],
  allowHeaders: [...connectCors.allowedHeaders, ...APP_HEADERS],
  exposeHeaders: [...connectCors.exposedHeaders],
  maxAge: 7200,
}));

app.use("*", async (c, next) => {
  await next();
  const origin = c.req.header("origin");
  if (origin && credentialOrigins(c.env).includes(origin)) {
    c.res.headers.set("access-control-allow-credentials", "true");
    c.res.headers.append("vary", "origin");
  }
});

/** Every front door, as /healthz lists them: the Connect services, and the doors of their own. */
const DOORS = [
  { door: "viam", service: "proto.rpc.webrtc.v1.SignalingService", path: "/proto.rpc.webrtc.v1.SignalingService/*" },
  { door: "voice", service: "protocol.voice.v1.VoiceService", path: "/protocol.voice.v1.VoiceService/*" },
  { door: "sip", service: "ondewo.sip.Sip", path: "/ondewo.sip.Sip/*" },
  { door: "audio-relay", protocol: "seed-003 binary audio over WebSocket", path: "/audio/:room" },
  { door: "livekit", protocol: "LiveKit signalling over WebSocket", path: "/rtc" },
  { door: "websocket-transport", protocol: "Connect streaming methods over WebSocket", path: "/ws/:service/:method" },
  { door: "calls-http", protocol: "call history and hang-up over HTTP", path: "/calls/:id" },
  { door: "operators", protocol: "LiveKit RoomService over Twirp (webhooks go out to WEBHOOK_URLS)", path: "/twirp/livekit.RoomService/*" },
];

app.get("/healthz", (c) => c.json({
  status: "ok",
  version,
  services: [...new Set(router.handlers.map((h) => h.service.typeName))],
  doors: DOORS,
}));

app.get("/audio/:room", audioRelay);

app.get("/calls/:id/history", callHistory);
app.post("/calls/:id/hangup", hangUpCall);

// Dev-only (DEV_TOKENS=1): tokens for the demo page at `/` (public/, built from web/).
app.post("/dev/token", devToken);

// Streaming methods over WebSocket, for browsers (see connect-websocket.ts).
app.get("/ws/:service/:method", connectOverWebSocket(router.handlers));

// LiveKit signalling (`/rtc`) for livekit-client, peer-to-peer rooms of two.
liveKitSignaling(app);

// LiveKit's RoomService over Twirp, for operators: every call of every door is a room.
app.post("/twirp/livekit.RoomService/:method", roomService);

mountConnect(app, router);

app.onError((err, c) => unhandled(c.req.path, err));

function unhandled(path: string, err: unknown): Response {
  console.error("unhandled", { path, err: String(err), stack: (err as Error).stack });
  return Response.json({ code: "internal", message: "internal error" }, { status: 500 });
}

const connectByPath = new Map(router.handlers.map((h) => [h.requestPath, h]));

/**
 * The Worker's fetch. A Connect call from a client that is not a page in a browser (no Origin
 * header: a Viam machine, an SDK in Node, a server) goes straight to its handler, the very one the
 * app mounts: Hono's router and the CORS middlewares only add headers that browsers read, and
 * were about 6 % of the Worker runtime's profile of a Viam setup (docs/performance.md).
 * Everything else, browsers' Connect calls included, goes through the app.
 */
export function fetchWorker(request: Request, env: Env, ctx: ExecutionContext): Response | Promise<Response> {
  if (request.method === "POST" && !request.headers.has("origin")) {
    const path = new URL(request.url).pathname;
    const handler = connectByPath.get(path);
    if (handler) return serveConnect(handler, request, env).catch((err: unknown) => unhandled(path, err));
  }
  return app.fetch(request, env, ctx);
}

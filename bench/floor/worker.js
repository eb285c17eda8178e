// The platform floor: the least a Worker and one Durable Object can do to relay a signalling
// exchange, served by the same `wrangler dev` as the Worker under test (bench/floor-bench.mjs starts
// it). Each peer holds a hibernatable WebSocket to its room's object, tagged with its id; a message
// is JSON with a `to` peer id and goes, unchanged, to the sockets tagged with that id. No auth, no
// storage, no call model: what is left is the runtime's own cost of a Worker → Durable Object
// WebSocket hop, which no design on this platform can go below.
//
// `GET /wait?host=H` is the floor of a waiting answerer, for the memory ramp: the Worker opens a
// hibernatable WebSocket to host H's object and holds the client's streaming response open,
// writing whatever the object pushes. That is the shape of a Voice or Viam stream waiting for a
// call on the spine (a held request plus one hibernated socket per host) without auth, Connect,
// protobuf or any state.
import { DurableObject } from "cloudflare:workers";

export class Room extends DurableObject {
  /** Only WebSocket upgrades, from the Worker below: the socket is accepted for hibernation. */
  async fetch(request) {
    const id = new URL(request.url).searchParams.get("id");
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server, [id]);
    return new Response(null, { status: 101, webSocket: client });
  }

  webSocketMessage(ws, message) {
    const { to } = JSON.parse(message);
    for (const peer of this.ctx.getWebSockets(to)) peer.send(message);
  }

  webSocketClose(ws, code, reason) {
    // Complete the closing handshake; 1005/1006 are only ever reported, never sent.
    try { ws.close(code === 1005 || code === 1006 ? 1000 : code, reason); } catch { /* already closed */ }
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/healthz") return new Response("ok"); // processes.mjs startWrangler waits for it
    if (url.pathname === "/wait") return waitForPush(env, url.searchParams.get("host") ?? "");
    if (url.pathname !== "/ws") return new Response("not found", { status: 404 });
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") return new Response("expected a WebSocket upgrade", { status: 426 });
    const room = url.searchParams.get("room"), id = url.searchParams.get("id");
    if (!room || !id) return new Response("room and id are required", { status: 400 });
    return env.ROOM.getByName(room).fetch(request);
  },
};

/** Holds the response open until the host's object pushes a message, then writes it. */
async function waitForPush(env, host) {
  if (!host) return new Response("host is required", { status: 400 });
  const res = await env.ROOM.getByName(host).fetch("https://room/ws?id=answerer", { headers: { upgrade: "websocket" } });
  const ws = res.webSocket;
  if (!ws) return new Response("the object refused the socket", { status: 502 });
  ws.accept();
  const { readable, writable } = new TransformStream();
  const writer = writable.getWriter();
  ws.addEventListener("message", (e) => { void writer.write(new TextEncoder().encode(String(e.data))); });
  ws.addEventListener("close", () => { void writer.close().catch(() => undefined); });
  return new Response(readable, { headers: { "content-type": "text/plain" } });
}

// Baseline for the signaling benchmark: the smallest honest WebSocket signaling server in plain
// Node. Clients connect as `/?id=<name>`; a caller's offer is forwarded to the socket of the host
// it names, the host's answer back to the caller. Everything is in memory: no auth, no storage,
// no queue, no retries — the floor any signaling server on this machine pays for one exchange.
// Run: node bench/node-ws-signaling.mjs [port]   (prints {"port":N} once listening)
import { WebSocketServer } from "ws";

const sockets = new Map(); // identity → socket
const wss = new WebSocketServer({ host: "127.0.0.1", port: Number(process.argv[2] ?? 0), perMessageDeflate: false });

wss.on("connection", (ws, req) => {
  const id = new URL(req.url, "http://x").searchParams.get("id");
  if (!id) return ws.close(1008, "id required");
  sockets.get(id)?.close(1008, "replaced");
  sockets.set(id, ws);
  ws.on("close", () => { if (sockets.get(id) === ws) sockets.delete(id); });
  ws.on("message", (data, isBinary) => {
    if (isBinary) return ws.close(1003, "text only");
    let msg;
    try { msg = JSON.parse(data); } catch { return ws.close(1007, "not JSON"); }
    // offer: caller → host; answer: host → caller. The server stamps who it came from.
    if ((msg.t !== "offer" && msg.t !== "answer") || typeof msg.to !== "string") return ws.close(1008, "bad message");
    const peer = sockets.get(msg.to);
    if (!peer) return ws.send(JSON.stringify({ t: "error", id: msg.id, code: "not_found" }));
    peer.send(JSON.stringify({ t: msg.t, from: id, id: msg.id, sdp: msg.sdp }));
  });
});

wss.on("listening", () => console.log(JSON.stringify({ port: wss.address().port })));
process.on("SIGTERM", () => process.exit(0));

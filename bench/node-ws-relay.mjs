// Baseline for the audio benchmark: a plain Node `ws` relay speaking just enough of seed 003 for
// the same client code to drive it. Clients connect as `/<room>?id=<name>`; a handshake (0) is
// forwarded to the socket it names, an accept (4) pairs the two, data (6) and drop (5) go to the
// peer unchanged; a text "ping" is answered "pong". In memory, no auth, no validation beyond the
// Length field.
// Run: node bench/node-ws-relay.mjs [port]   (prints {"port":N} once listening)
import { WebSocketServer } from "ws";

const HANDSHAKE = 0, USER_NOT_FOUND = 1, ACCEPT = 4, DROP = 5, DATA = 6;
const rooms = new Map(); // room → Map(identity → { ws, peer, caller })
const wss = new WebSocketServer({ host: "127.0.0.1", port: Number(process.argv[2] ?? 0), perMessageDeflate: false,
  maxPayload: 64 * 1024 });

wss.on("connection", (ws, req) => {
  const url = new URL(req.url, "http://x");
  const id = url.searchParams.get("id");
  const roomName = url.pathname.slice(1);
  if (!id || !roomName) return ws.close(1008, "room and id required");
  if (!rooms.has(roomName)) rooms.set(roomName, new Map());
  const room = rooms.get(roomName);
  const me = { ws, peer: null, caller: null };
  room.get(id)?.ws.close(1008, "replaced");
  room.set(id, me);
  ws.on("close", () => {
    if (room.get(id) !== me) return;
    room.delete(id);
    const peer = me.peer && room.get(me.peer);
    if (peer) { peer.peer = null; peer.ws.send(header(DROP)); }
  });
  ws.on("message", (data, isBinary) => {
    if (!isBinary && data.length === 4 && data.toString() === "ping") return ws.send("pong");
    if (!isBinary || data.length < 6 || data.readUInt32LE(0) !== data.length) return ws.close(1002, "bad packet");
    const type = data.readUInt16LE(4);
    if (type === HANDSHAKE) {
      const target = room.get(data.toString("utf8", 19, 19 + data.readUInt16LE(17)));
      if (!target) return ws.send(header(USER_NOT_FOUND));
      target.caller = id;
      return target.ws.send(data);
    }
    if (type === ACCEPT && me.caller && room.get(me.caller)) {
      const caller = room.get(me.caller);
      me.peer = me.caller; caller.peer = id; me.caller = null;
      return caller.ws.send(data);
    }
    const peer = me.peer && room.get(me.peer);
    if (!peer) return;
    if (type === DROP) { me.peer = null; peer.peer = null; }
    peer.ws.send(data);
  });
});

function header(type) {
  const b = Buffer.alloc(6);
  b.writeUInt32LE(6, 0);
  b.writeUInt16LE(type, 4);
  return b;
}

wss.on("listening", () => console.log(JSON.stringify({ port: wss.address().port })));
process.on("SIGTERM", () => process.exit(0));

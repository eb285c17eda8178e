// The client end of every WebSocket the benchmarks open (to this Worker, the Node baselines and
// PeerJS): compression off, as browsers negotiate it for these servers, and a deadline on the
// opening handshake so a server that stops accepting fails the run instead of hanging it.
import WebSocket from "ws";

export function openWebSocket(url, timeoutMs = 15_000) {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { ws.terminate(); reject(new Error("WebSocket open timed out")); }, timeoutMs);
    ws.once("open", () => { clearTimeout(timer); resolve(ws); });
    ws.once("error", (err) => { clearTimeout(timer); reject(err); });
    ws.once("unexpected-response", (_req, res) => { clearTimeout(timer); reject(new Error(`upgrade refused: ${res.statusCode}`)); });
  });
}

/** The next message `ws` receives. */
export function nextMessage(ws, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no message in time")), timeoutMs);
    ws.once("message", (data) => { clearTimeout(timer); resolve(data); });
  });
}

// PeerJS's own signalling server (npm `peer`, PeerServer) as a child process of the benchmark, so
// its CPU and memory are its own process's. Stock configuration (key "peerjs", path "/", so the
// WebSocket is at /peerjs?key=peerjs&id=…&token=…) on loopback and a free port; the concurrent
// peer limit is raised from its 5 000 default so the memory ramp can never hit it. Prints
// {"port":N} once listening, as bench/processes.mjs startBaseline expects.
import { PeerServer } from "peer";

const server = PeerServer({ host: "127.0.0.1", port: 0, key: "peerjs", path: "/", concurrent_limit: 100_000 }, (http) => {
  process.stdout.write(`${JSON.stringify({ port: http.address().port })}\n`);
});
server.on("error", (err) => console.error("peer server error:", err));

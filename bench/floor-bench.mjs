// The platform floor (bench/floor/worker.js): a bare Worker and one Durable Object relaying the
// PeerJS comparison's exchange — offer → answer → first candidate — as JSON over hibernatable
// WebSockets, under the same `wrangler dev` (version, build, flags) as the Worker under test. It is
// the least this platform can do for that exchange; "ours / floor" is what this Worker's protocol
// work, auth, call model and storage add on top of the runtime.
//
// What is timed mirrors peerjs-bench.mjs's PeerJS side: both peers hold an open WebSocket (each
// slot its own room, so its own object) before the clock starts; the clock starts when the caller
// sends the offer and stops when the caller receives the callee's candidate; the callee sends the
// answer and then the candidate as soon as the offer arrives. In the timed path: 3 messages into
// the object (each one webSocketMessage), 3 out.
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ANSWER_SDP, CANDIDATE, OFFER_SDP } from "./fixtures.mjs";
import { startWrangler } from "./processes.mjs";
import { runSlots } from "./signaling-bench.mjs";
import { openWebSocket } from "./websocket-client.mjs";

const ROOT = resolve(import.meta.dirname, "..");
const CALL_TIMEOUT_MS = 15_000;

/** The floor's wrangler config: its one object, and the project's compatibility date and flags, so
 * both Workers run with the same runtime behaviour. */
function floorToml() {
  const project = readFileSync(join(ROOT, "wrangler.toml"), "utf8");
  const line = (key) => new RegExp(`^${key}\\s*=.*$`, "m").exec(project)?.[0] ?? "";
  return [
    'name = "bench-platform-floor"', 'main = "worker.js"', line("compatibility_date"), line("compatibility_flags"), "",
    "[[durable_objects.bindings]]", 'name = "ROOM"', 'class_name = "Room"', "",
    "[[migrations]]", 'tag = "v1"', 'new_sqlite_classes = ["Room"]', "",
  ].join("\n");
}

/** Starts the floor under wrangler dev, as processes.mjs startWrangler starts the Worker under test. */
export function startFloor(authSecret, name = "wrangler dev (floor)") {
  return startWrangler(authSecret, { name, config: { toml: floorToml(), dir: join(ROOT, "bench/floor") } });
}

/** One slot: a caller and a callee in room `room`; `call()` times offer → answer and → candidate. */
async function floorSlot(wsBase, room) {
  const url = (id) => `${wsBase}/ws?room=${encodeURIComponent(room)}&id=${id}`;
  const [caller, callee] = await Promise.all([openWebSocket(url("caller")), openWebSocket(url("callee"))]);
  callee.on("message", (data) => {
    const m = JSON.parse(data);
    if (m.type !== "offer") return;
    callee.send(JSON.stringify({ type: "answer", to: m.from, from: "callee", cid: m.cid, sdp: ANSWER_SDP }));
    callee.send(JSON.stringify({ type: "candidate", to: m.from, from: "callee", cid: m.cid, candidate: CANDIDATE }));
  });
  const waiting = new Map();
  caller.on("message", (data) => { const m = JSON.parse(data); waiting.get(m.cid)?.(m); });
  let n = 0;
  return {
    async call() {
      const cid = `${room}-${++n}`;
      let answerMs = null;
      const t0 = performance.now();
      const got = new Promise((resolveCall, reject) => {
        const timer = setTimeout(() => reject(new Error("floor call timed out")), CALL_TIMEOUT_MS);
        waiting.set(cid, (m) => {
          if (m.type === "answer") answerMs = performance.now() - t0;
          else if (m.type === "candidate") { clearTimeout(timer); resolveCall(m); }
          else { clearTimeout(timer); reject(new Error(`floor caller got ${m.type}`)); }
        });
      });
      caller.send(JSON.stringify({ type: "offer", to: "callee", from: "caller", cid, sdp: OFFER_SDP }));
      const m = await got;
      const ms = performance.now() - t0;
      waiting.delete(cid);
      if (answerMs === null || m.candidate.candidate !== CANDIDATE.candidate) throw new Error("floor: answer missing or candidate changed");
      return { ms, answerMs, retries: 0 };
    },
    close() { caller.terminate(); callee.terminate(); },
  };
}

/** `calls` exchanges over `concurrency` slots (one room each), warmed up as the PeerJS side is. */
export async function floorSignaling({ server, calls, concurrency, deadline, cpu }) {
  const run = `c${concurrency}-${Date.now().toString(36)}`;
  return runSlots(concurrency, (i) => floorSlot(server.url, `floor-${run}-${i}`), { calls, warmup: concurrency === 1 ? 20 : 2, deadline, cpu });
}

export const FLOOR_PATH = "caller sends the offer (JSON over a hibernatable WebSocket to its room's Durable Object, through the Worker) → the object's webSocketMessage forwards it to the socket tagged with the callee's id → callee sends answer and candidate → the object forwards both → caller receives the candidate. Both sockets open before the clock starts; one room (object) per slot.";

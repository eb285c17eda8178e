// The write rate one room-directory shard holds (durable-objects/room-directory.ts). Every call,
// LiveKit room and audio room sends its operator events to the shard its name hashes to, one RPC
// per outbox flush, carrying each room's newest state once; a call makes three flushes (start:
// room_started + the caller's participant_joined; claim: the callee's participant_joined; end: two
// participant_left and room_finished), so three row writes. This bench runs the real RoomDirectory class in `wrangler dev` (loopback only),
// behind a bench Worker that plays many call objects at once against ONE shard: `concurrency`
// calls in flight, each making its three flushes in turn with fresh room names, for `seconds`.
// It reports flushes/s, events/s and call lifecycles/s the shard took, and the flush latency.
//
//   node bench/room-directory-bench.mjs            # concurrency 1, 8, 32, 128; 3 s each
//   SECONDS=5 CONCURRENCY=64 node bench/room-directory-bench.mjs
//   MODE=lookup node bench/room-directory-bench.mjs   # the same RPCs, reads only: the RPC's own cost
//
// Bounded: at most 10 s per step and 256 calls in flight; nothing leaves 127.0.0.1.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { cpuBetween, freePort, groupCpu } from "./processes.mjs";

const ROOT = resolve(import.meta.dirname, "..");
const SECONDS = Math.min(10, Number(process.env.SECONDS ?? 3));
const MODE = process.env.MODE === "lookup" ? "lookup" : "record";
const STEPS = (process.env.CONCURRENCY ?? "1,8,32,128").split(",").map(Number).map((n) => Math.min(256, Math.max(1, n)));

const ENTRY = `
import { RoomDirectory } from ${JSON.stringify(join(ROOT, "durable-objects/room-directory.ts"))};
export { RoomDirectory };

const room = (name, n, at) => ({ sid: "RM_" + name, name, createdAt: at, metadata: '{"kind":"call"}', numParticipants: n });

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const seconds = Math.min(10, Number(url.searchParams.get("seconds") ?? 3));
    const concurrency = Math.min(256, Number(url.searchParams.get("concurrency") ?? 8));
    const shard = env.ROOM_DIRECTORY.getByName("shard-bench-" + url.searchParams.get("run"));
    // MODE=lookup: the same RPCs, reading instead of writing (what the RPC alone costs).
    const readOnly = url.searchParams.get("mode") === "lookup";
    let flushes = 0, events = 0, calls = 0, errors = 0, next = 0;
    const latencies = [];
    const started = Date.now();
    const until = started + seconds * 1000;
    const flush = async (updates) => {
      const t0 = Date.now();
      try {
        if (readOnly) await shard.lookup(updates[0].room.name);
        else await shard.record(updates);
        flushes++;
        events += updates.length;
        latencies.push(Date.now() - t0);
      } catch {
        errors++;
      }
    };
    const call = async () => {
      while (Date.now() < until) {
        const name = crypto.randomUUID();
        const at = Date.now();
        const seq = at * 1000 + (next++ % 1000);
        // The outbox sends each room's newest state once per flush (operator-outbox.ts).
        await flush([{ kind: "call", seq: seq + 1, room: room(name, 1, at), finished: false }]);
        await flush([{ kind: "call", seq: seq + 2, room: room(name, 2, at), finished: false }]);
        await flush([{ kind: "call", seq: seq + 5, room: room(name, 0, at), finished: true }]);
        calls++;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, call));
    const elapsed = (Date.now() - started) / 1000;
    latencies.sort((a, b) => a - b);
    const pick = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? null;
    return Response.json({ concurrency, seconds: elapsed, flushes, events: calls * 6, calls, errors,
      flushesPerSecond: Math.round(flushes / elapsed), eventsPerSecond: Math.round(calls * 6 / elapsed),
      callsPerSecond: Math.round(calls / elapsed), flushMs: { p50: pick(0.5), p99: pick(0.99) } });
  },
};
`;

const project = readFileSync(join(ROOT, "wrangler.toml"), "utf8");
const compatibilityDate = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(project)[1];
const dir = mkdtempSync(join(tmpdir(), "room-directory-bench-"));
writeFileSync(join(dir, "entry.ts"), ENTRY);
writeFileSync(join(dir, "wrangler.toml"), `name = "room-directory-bench"
main = "entry.ts"
compatibility_date = "${compatibilityDate}"

[[durable_objects.bindings]]
name = "ROOM_DIRECTORY"
class_name = "RoomDirectory"

[[migrations]]
tag = "v1"
new_sqlite_classes = ["RoomDirectory"]
`);

const port = await freePort();
const child = spawn(process.execPath, [join(ROOT, "node_modules/wrangler/bin/wrangler.js"), "dev", "--config", join(dir, "wrangler.toml"),
  "--port", String(port), "--ip", "127.0.0.1", "--persist-to", join(dir, "state"), "--show-interactive-dev-session=false",
  "--log-level", "warn"], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, CI: "1" }, detached: true });
let output = "";
child.stdout.on("data", (d) => { output += d; });
child.stderr.on("data", (d) => { output += d; });
const stop = () => {
  try { process.kill(-child.pid, "SIGTERM"); } catch { /* gone */ }
  rmSync(dir, { recursive: true, force: true });
};
process.on("SIGINT", () => { stop(); process.exit(130); });

try {
  const base = `http://127.0.0.1:${port}`;
  const until = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited:\n${output}`);
    if (Date.now() > until) throw new Error(`wrangler dev did not start:\n${output}`);
    try {
      if ((await fetch(`${base}/bench?seconds=0.2&concurrency=1&run=warm`)).ok) break;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  const results = [];
  for (const [i, concurrency] of STEPS.entries()) {
    const cpuBefore = groupCpu({ child });
    const res = await fetch(`${base}/bench?seconds=${SECONDS}&concurrency=${concurrency}&run=${i}&mode=${MODE}`);
    const result = await res.json();
    // CPU of the runtime (workerd) per flush, the shard and the bench Worker playing the call
    // objects together: a figure the machine's other load does not change, unlike the rate.
    const cpu = cpuBetween(cpuBefore, groupCpu({ child }), result.flushes);
    result.runtimeCpuMsPerFlush = cpu.byRole["workerd (Worker runtime)"] ?? cpu.total;
    result.flushesPerCoreSecond = Math.round(1000 / result.runtimeCpuMsPerFlush);
    results.push(result);
    console.log(`concurrency ${String(concurrency).padStart(3)}: ${String(result.flushesPerSecond).padStart(6)} flushes/s, `
      + `${String(result.eventsPerSecond).padStart(6)} events/s, ${String(result.callsPerSecond).padStart(5)} calls/s; `
      + `flush p50 ${result.flushMs.p50} ms, p99 ${result.flushMs.p99} ms; errors ${result.errors}; `
      + `runtime CPU ${result.runtimeCpuMsPerFlush} ms/flush (${result.flushesPerCoreSecond} flushes per core-second)`);
  }
  const best = results.reduce((a, b) => (b.flushesPerSecond > a.flushesPerSecond ? b : a));
  console.log(JSON.stringify({ load: (await import("node:os")).loadavg(), machine: `${(await import("node:os")).cpus().length} cores, ${(await import("node:os")).cpus()[0].model}`,
    mode: MODE, seconds: SECONDS, best, results }, null, 2));
} finally {
  stop();
}

// What waiting answerers cost while nothing happens, on the counting instance (billing.mjs):
// `answerers` Voice Connect streams and as many Viam Answer streams (heartbeats-allowed: true, as
// goutils' answerer sends them), one identity each, all waiting for a call that never comes. Once
// they are registered the counts are reset, the run sits idle for `idleSeconds`, and the counts
// are read: Durable Object active seconds (the time an object has a handler in flight, so cannot
// hibernate and is billed for duration), Durable Object requests and WebSocket messages in, per
// waiting answerer. Objects are told apart by the name their stub was got by (a callee's objects
// are named for its identity), so Voice and Viam answerers are reported apart; what neither
// names is "other".
//
// Before that, countCalls (20 call setups) on the same instance gives active seconds per call
// setup, so the two can be read together: an online callee's idle hour against its calls.
//
// Nothing else runs meanwhile: the idle window is wall time, and a run that overlapped it with
// load would measure the load.
import { signToken } from "../scripts/dev-token.mjs";
import { countCalls, setupActivity, startCountingWrangler } from "./billing.mjs";
import { stop } from "./processes.mjs";
import { workerClients } from "./protos.mjs";
import { log, show, table } from "./report.mjs";
import { waitingAnswerer } from "./signaling-bench.mjs";
import { round, sleep } from "./stats.mjs";

/** After the streams open, before the counts are reset: every stream has reached its object and
 * the objects' first writes (registration, lease) are done, so the window holds only waiting. */
const REGISTER_MS = 3_000;
/** Longest wait for the count's leftovers (a closed stream's handler still in flight on the
 * server) before the idle streams open: over one answerer long-poll (ANSWERER_HEARTBEAT_MS, 15 s). */
const DRAIN_MAX_MS = 20_000;

const sum = (values) => values.reduce((s, v) => s + v, 0);
const total = (byKey) => sum(Object.values(byKey ?? {}));

export async function idleAnswerers({ authSecret, protos, ref = null, answerers, idleSeconds }) {
  log(`idle answerers: starting a counting wrangler dev`);
  const counting = await startCountingWrangler(authSecret, { ref });
  const clients = workerClients(protos, counting.baseUrl, { viam: "grpc-web", ownAgent: true });
  const aborts = [];
  let failed = null;
  try {
    log("  counting 20 call setups");
    const callCount = await countCalls(counting, protos, authSecret, 20);
    const setup = setupActivity(callCount);
    log(`  ${setup.doActiveSecondsCounted} Durable Object active s per call setup ${JSON.stringify(setup.doActiveSecondsByClass)} over a ${setup.countWindowSeconds} s count`);
    // The idle window starts with no handler of the count's still running.
    const drainFrom = performance.now();
    while (performance.now() - drainFrom < DRAIN_MAX_MS && (await counting.counts({ objects: true })).byObject.some((o) => o.inFlight > 0)) await sleep(250);
    const drainSeconds = round((performance.now() - drainFrom) / 1000, 1);
    log(`  the count's handlers settled after ${drainSeconds} s`);

    const run = Date.now().toString(36);
    const prefix = { voice: `idle-voice-${run}-`, viam: `idle-viam-${run}-` };
    for (const door of ["voice", "viam"]) {
      for (let i = 0; i < answerers; i++) {
        const identity = `${prefix[door]}${i}`;
        const abort = new AbortController();
        aborts.push(abort);
        waitingAnswerer(clients, door, { authorization: `Bearer ${await signToken(identity, authSecret)}`, "rpc-host": identity }, abort.signal, (err) => { failed ??= err; });
        if (i % 50 === 49) await sleep(50);
      }
    }
    await sleep(REGISTER_MS);
    if (failed) throw failed;
    await counting.reset();
    log(`  ${answerers} Voice + ${answerers} Viam answerers waiting; idle for ${idleSeconds} s`);
    const t0 = performance.now();
    await sleep(idleSeconds * 1000);
    const c = await counting.counts({ objects: true });
    const windowSeconds = (performance.now() - t0) / 1000;
    if (failed) throw failed;

    const group = (name) => (name.startsWith(prefix.voice) ? "voice" : name.startsWith(prefix.viam) ? "viam" : "other");
    const by = { voice: [], viam: [], other: [] };
    for (const o of c.byObject ?? []) by[group(o.name)].push(o);
    const per = (objects, n) => ({
      objects: objects.length,
      activeSecondsPerAnswerer: round(sum(objects.map((o) => o.activeMs)) / 1000 / n, 2),
      activeFraction: round(sum(objects.map((o) => o.activeMs)) / 1000 / n / windowSeconds, 3),
      doRequestsPerAnswerer: round(sum(objects.map((o) => o.requests)) / n, 2),
      wsMessagesInPerAnswerer: round(sum(objects.map((o) => o.wsMessagesIn)) / n, 2),
      alarmsPerAnswerer: round(sum(objects.map((o) => o.alarms)) / n, 2),
      activeSecondsByClass: Object.fromEntries(Object.entries(Object.groupBy(objects, (o) => o.cls)).map(([cls, os]) => [cls, round(sum(os.map((o) => o.activeMs)) / 1000 / n, 2)])),
    });
    const all = Object.values(by).flat();
    const result = {
      measuredPath: `${answerers} Voice Connect streams and ${answerers} Viam Answer streams (heartbeats-allowed: true), one identity each, open and waiting; counts reset ${REGISTER_MS / 1000} s after they opened, read after the idle window`,
      config: { answerers, idleSeconds }, countDrainSeconds: drainSeconds,
      windowSeconds: round(windowSeconds, 1),
      voice: per(by.voice, answerers),
      viam: per(by.viam, answerers),
      other: per(by.other, 1),
      // Every object's counts over both kinds of answerer together (the class totals).
      allPerAnswerer: {
        activeSeconds: round(sum(all.map((o) => o.activeMs)) / 1000 / (2 * answerers), 2),
        doRequests: round(total(c.doRequests) / (2 * answerers), 2),
        wsMessagesIn: round(total(c.wsMessagesIn) / (2 * answerers), 2),
        alarms: round(total(c.alarms) / (2 * answerers), 2),
        rowsWritten: round(total(c.rowsWritten) / (2 * answerers), 2),
        alarmWrites: round(total(c.alarmWrites) / (2 * answerers), 2),
      },
      counts: { workerRequests: c.workerRequests, doRequests: c.doRequests, wsMessagesIn: c.wsMessagesIn, alarms: c.alarms, activeMs: c.activeMs, activeObjects: c.activeObjects, rowsWritten: c.rowsWritten, alarmWrites: c.alarmWrites },
      perCallSetup: {
        calls: callCount.calls, countWindowSeconds: setup.countWindowSeconds,
        doActiveSeconds: setup.doActiveSecondsCounted, doActiveSecondsByClass: setup.doActiveSecondsByClass,
        doRpcAndFetch: round(total(callCount.counts.doRequests) / callCount.calls, 2), wsMessagesIn: round(total(callCount.counts.wsMessagesIn) / callCount.calls, 2),
      },
    };
    for (const door of ["voice", "viam"]) {
      const r = result[door];
      log(`  ${door}: ${r.activeSecondsPerAnswerer} active s per answerer in ${result.windowSeconds} s (${r.activeFraction} of the time) ${JSON.stringify(r.activeSecondsByClass)}, ${r.doRequestsPerAnswerer} DO requests, ${r.wsMessagesInPerAnswerer} WS messages in`);
    }
    if (result.other.objects) log(`  other objects: ${result.other.objects}, ${result.other.activeSecondsPerAnswerer} active s in all`);
    return result;
  } finally {
    for (const a of aborts) a.abort();
    await sleep(200);
    clients.close();
    await stop(counting);
  }
}

export function idleTable(r) {
  const w = r.windowSeconds;
  const rows = [];
  for (const [door, what] of [["voice", "Voice Connect stream waiting"], ["viam", "Viam Answer stream waiting (heartbeats-allowed)"]]) {
    const d = r[door];
    rows.push([`${what}: Durable Object active s per answerer over ${w} s`, show(d.activeSecondsPerAnswerer), `${show(d.activeFraction * 100, 1)} %`]);
    rows.push([`${what}: Durable Object requests per answerer over ${w} s`, show(d.doRequestsPerAnswerer), "—"]);
    rows.push([`${what}: WebSocket messages into objects per answerer over ${w} s`, show(d.wsMessagesInPerAnswerer), "—"]);
  }
  if (r.other.objects) rows.push([`objects named for neither (${r.other.objects}): active s in all over ${w} s`, show(r.other.activeSecondsPerAnswerer), "—"]);
  const s = r.perCallSetup;
  rows.push([`one call setup (countCalls, ${s.calls} calls over ${s.countWindowSeconds} s): Durable Object active s per setup`, show(s.doActiveSeconds, 3), "—"]);
  return `\n### Idle answerers: ${r.config.answerers} Voice + ${r.config.answerers} Viam streams waiting, ${r.config.idleSeconds} s idle (counting wrangler dev)\n\n` +
    table(["metric", "value", "share of the window"], rows) +
    "\n\nActive: at least one handler of the object in flight (an RPC method or fetch until it settles, webSocketMessage/webSocketClose/alarm; timed inside the object), so it cannot hibernate. " +
    "A call setup's figure is every object's active time during the count (its callees' waiting streams included) over its calls.";
}

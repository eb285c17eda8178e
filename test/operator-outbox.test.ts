// The outbox (durable-objects/operator-outbox.ts) in the Workers runtime: rows live and die with
// the transaction of the state change they report, and rows an object reset kept from being sent
// are sent afterwards, by the alarm or the next wake.
import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import type { CallRecord } from "../durable-objects/call-record";
import { onlineAnswerer } from "./door-clients";
import { describe, expect, it } from "vitest";
import { deliverOperatorEvents, OperatorOutbox, type WebhookDelivery } from "../durable-objects/operator-outbox";
import { webhookBody } from "../codecs/livekit-operator";
import type { OperatorEvent } from "../model/operator-events";
import { directoryShard } from "../model/operator-events";

const started = (name: string): OperatorEvent => ({ event: "room_started", at: Date.now(),
  room: { sid: "RM_test", name, createdAt: Date.now(), metadata: "{}", numParticipants: 0 } });

const pendingRows = (state: DurableObjectState) => [...state.storage.kv.list({ prefix: "outbox/" })].length;

describe("operator outbox", () => {
  it("keeps no event of a change whose transaction failed", async () => {
    const stub = env.CALLS.getByName(crypto.randomUUID());
    await runInDurableObject(stub, (_, state) => {
      const outbox = new OperatorOutbox(state.storage, env, "call");
      expect(() => state.storage.transactionSync(() => {
        state.storage.kv.put("call", { changed: true });
        outbox.write([started("never")]);
        throw new Error("the change failed");
      })).toThrow("the change failed");
      expect(state.storage.kv.get("call")).toBeUndefined();
      expect(pendingRows(state)).toBe(0);
    });
  });

  it("sends the rows a reset kept from being sent, once the object runs again", async () => {
    const name = crypto.randomUUID();
    const stub = env.CALLS.getByName(name);
    // A change recorded with its event, and the alarm armed with it, and then the object is reset
    // before its send ran.
    await runInDurableObject(stub, (_, state) => {
      state.storage.transactionSync(() => new OperatorOutbox(state.storage, env, "call").write([started(name)]));
      void state.storage.setAlarm(Date.now() + 60_000);
    });
    await evictDurableObject(stub);
    expect(await env.ROOM_DIRECTORY.getByName(`shard-${directoryShard(name)}`).lookup(name)).toBeNull();
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    await expect.poll(() => env.ROOM_DIRECTORY.getByName(`shard-${directoryShard(name)}`).lookup(name), { timeout: 2_000 })
      .toMatchObject({ kind: "call", room: { name } });
    expect(await runInDurableObject(stub, (_, state) => pendingRows(state))).toBe(0);
  });

  it("builds each event's webhook body when it is sent, the same bytes every time, and none without a webhook URL", async () => {
    const name = crypto.randomUUID();
    const entry = { kind: "call" as const, entry: { id: "EV_samebytes", seq: Date.now() * 1000, event: started(name) } };
    const sent: WebhookDelivery[] = [];
    // The queue binding recorded, so the messages' bodies can be compared; the directory is the real one.
    const withQueue = (urls: string) => ({ ...env, WEBHOOK_URLS: urls,
      OPERATOR_WEBHOOKS: { sendBatch: async (batch: { body: WebhookDelivery }[]) => { sent.push(...batch.map((m) => m.body)); } } }) as unknown as Env;
    await deliverOperatorEvents(withQueue(""), [entry]);
    expect(sent).toEqual([]);
    await deliverOperatorEvents(withQueue("https://a.example/hook,https://b.example/hook"), [entry]);
    await deliverOperatorEvents(withQueue("https://a.example/hook"), [entry]);
    expect(sent.map((d) => d.url)).toEqual(["https://a.example/hook", "https://b.example/hook", "https://a.example/hook"]);
    expect(new Set(sent.map((d) => d.body))).toEqual(new Set([webhookBody(entry.entry.event, "EV_samebytes")]));
    expect(JSON.parse(sent[0].body)).toMatchObject({ event: "room_started", id: "EV_samebytes", room: { name } });
  });

  it("keeps a room's newest state in the directory whatever order its updates arrive in", async () => {
    const name = `ordered-${Date.now()}`;
    const shard = env.ROOM_DIRECTORY.getByName(`shard-${directoryShard(name)}`);
    const room = (n: number) => ({ sid: "RM_x", name, createdAt: 1, metadata: "{}", numParticipants: n });
    await shard.record([{ kind: "audio", seq: 3, room: room(0), finished: true }]);
    await shard.record([{ kind: "audio", seq: 2, room: room(2), finished: false }]);
    expect(await shard.lookup(name)).toBeNull();
    expect(await shard.list([name])).toEqual([]);
  });

  // A call keeps its events in its record (durable-objects/call-outbox.ts), not in rows of its own.
  const storedOutbox = (id: string) => runInDurableObject(env.CALLS.getByName(id),
    (_o, state) => state.storage.kv.get<CallRecord>("call")?.outbox);
  async function startCall(): Promise<string> {
    const host = `outbox-host-${crypto.randomUUID()}`;
    await onlineAnswerer(host);
    const id = crypto.randomUUID();
    const started = await env.CALLS.getByName(id).start(id, { host, caller: { identity: "alice", door: "viam" },
      sdp: "offer", disableTrickle: false, deadline: Date.now() + 10_000 });
    expect(started.ok).toBe(true);
    return id;
  }

  it("writes a call's events into its record, with no row of their own, and drops them once an ended call sent them", async () => {
    const id = await startCall();
    expect((await storedOutbox(id))?.map((e) => e.event.event)).toEqual(["room_started", "participant_joined"]);
    expect(await runInDurableObject(env.CALLS.getByName(id), (_o, state) => pendingRows(state))).toBe(0);
    expect((await env.CALLS.getByName(id).act("caller", "alice", { op: "hangup" })).ok).toBe(true);
    // Sent, and the ended call wrote its record once more without them.
    await expect.poll(() => storedOutbox(id), { timeout: 3_000 }).toEqual([]);
    expect(await env.ROOM_DIRECTORY.getByName(`shard-${directoryShard(id)}`).lookup(id)).toBeNull();
  });

  it("sends the events a call's record holds when the call wakes after a reset", async () => {
    const id = await startCall();
    // A call still going drops what it sent at its next write or within CALL_OUTBOX_PRUNE_MS.
    await expect.poll(() => storedOutbox(id), { timeout: 5_000 }).toEqual([]);
    // As if a reset came between a change and its send: the record holds an event no send took.
    const unsent = `unsent-${crypto.randomUUID()}`;
    await runInDurableObject(env.CALLS.getByName(id), (_o, state) => {
      const record = state.storage.kv.get<CallRecord>("call")!;
      record.outbox = [{ id: "EV_unsent", seq: Date.now() * 1000, event: started(unsent) }];
      state.storage.kv.put("call", record);
    });
    await evictDurableObject(env.CALLS.getByName(id));
    const shard = env.ROOM_DIRECTORY.getByName(`shard-${directoryShard(unsent)}`);
    expect(await shard.lookup(unsent)).toBeNull();
    await env.CALLS.getByName(id).summary(); // wakes it
    await expect.poll(() => shard.lookup(unsent), { timeout: 3_000 }).toMatchObject({ kind: "call", room: { name: unsent } });
    await expect.poll(() => storedOutbox(id), { timeout: 5_000 }).toEqual([]);
  });
});

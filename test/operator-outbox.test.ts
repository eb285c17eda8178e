// The outbox (durable-objects/operator-outbox.ts) in the Workers runtime: rows live and die with
// the transaction of the state change they report, and rows an object reset kept from being sent
// are sent afterwards, by the alarm or the next wake.
import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { OperatorOutbox } from "../durable-objects/operator-outbox";
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

  it("keeps a room's newest state in the directory whatever order its updates arrive in", async () => {
    const name = `ordered-${Date.now()}`;
    const shard = env.ROOM_DIRECTORY.getByName(`shard-${directoryShard(name)}`);
    const room = (n: number) => ({ sid: "RM_x", name, createdAt: 1, metadata: "{}", numParticipants: n });
    await shard.record([{ kind: "audio", seq: 3, room: room(0), finished: true }]);
    await shard.record([{ kind: "audio", seq: 2, room: room(2), finished: false }]);
    expect(await shard.lookup(name)).toBeNull();
    expect(await shard.list([name])).toEqual([]);
  });
});

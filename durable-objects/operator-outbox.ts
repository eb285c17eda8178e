// The outbox of an object whose rooms operators see (a call, a LiveKit room, an audio room). An
// event is written here in the same storage transaction as the state change it reports, so there
// is never an event for a change that was not recorded, and none is lost for one that was: the
// rows stay until both of their consumers took them, the room directory (for RoomService) and the
// webhook queue (one message per event and URL, for worker/webhook-delivery.ts). Sending starts at
// once; whatever is still here when the object wakes again (after a reset cut a send short) or
// when its alarm fires (the object brings it forward to OUTBOX_RETRY_MS while rows wait) is sent
// again. A row sent twice is harmless: the directory keeps each room's newest update by sequence,
// and a webhook receiver sees the same event id (LiveKit's webhooks are at least once too).
import { webhookBody, newEventId } from "../codecs/livekit-operator";
import { directoryShard, webhookUrls, type OperatorEvent, type RoomKind } from "../model/operator-events";
import { OUTBOX_COALESCE_MS, OUTBOX_RETRY_MS } from "../model/limits";
import type { DirectoryUpdate } from "./room-directory";

const PREFIX = "outbox/";
/** Queue sendBatch takes at most 100 messages. */
const QUEUE_BATCH = 100;

/** One webhook POST to make: the queue's message. `body` is final, so every retry sends the same bytes. */
export interface WebhookDelivery {
  v: 1;
  url: string;
  id: string;
  event: string;
  body: string;
}

/** One event waiting to be sent. */
interface OutboxEntry {
  id: string;
  /** Orders the room's updates in the directory (see RoomDirectory.record). */
  seq: number;
  event: OperatorEvent;
  body: string;
}

/** The events of one state change: one row, so a change costs one row written and one deleted
 * however many events it has (a call's start has two, its end three). */
interface OutboxRow {
  kind: RoomKind;
  entries: OutboxEntry[];
}

export class OperatorOutbox {
  private sending: Promise<void> | undefined;
  /** Rows may be waiting (written, or found on wake); false once a send emptied the outbox. */
  private waiting: boolean;
  private lastSeq = 0;
  /** While rows wait: when the object's alarm must come by to send them again. */
  private retryAtMs: number | undefined;
  /** A send is scheduled (sendSoon). */
  private sendScheduled = false;

  constructor(private readonly storage: DurableObjectStorage, private readonly env: Env, private readonly kind: RoomKind) {
    this.waiting = !storage.kv.list({ prefix: PREFIX, limit: 1 })[Symbol.iterator]().next().done;
  }

  /** Whether rows wait to be sent: the object keeps its alarm within OUTBOX_RETRY_MS meanwhile. */
  get pending(): boolean {
    return this.waiting;
  }

  /**
   * Writes the rows of `events`. Call it in the same synchronous block as the write of the state
   * change (or inside its `transactionSync`): the object's storage commits both at once or neither.
   */
  write(events: OperatorEvent[]): void {
    if (!events.length) return;
    const entries = events.map((event) => {
      // Milliseconds × 1000, then one more per event: above every seq this room used before, across
      // wakes too, since no object wakes twice within the same millisecond.
      const seq = Math.max(this.lastSeq + 1, event.at * 1000);
      this.lastSeq = seq;
      const id = newEventId();
      return { id, seq, event, body: webhookBody(event, id) };
    });
    this.storage.kv.put(`${PREFIX}${String(entries[0].seq).padStart(17, "0")}`, { kind: this.kind, entries } satisfies OutboxRow);
    this.waiting = true;
  }

  /** When the object's alarm must come by to send waiting rows again; Infinity when none wait. */
  retryAt(): number {
    return this.waiting ? (this.retryAtMs ??= Date.now() + OUTBOX_RETRY_MS) : Infinity;
  }

  /** The object's alarm fired: a retry from now on counts from now. */
  alarmFired(): void {
    this.retryAtMs = undefined;
  }

  /**
   * Sends what waits; a consumer that could not take it is logged and the rows wait for
   * `retryAt`. True when this send emptied an outbox that had a retry time: the object may then
   * bring its alarm back to its own deadlines.
   */
  async sendOrWait(context: Record<string, unknown>): Promise<boolean> {
    try {
      await this.flush();
    } catch (err) {
      console.warn("operator events not sent yet", { ...context, err: String(err) });
    }
    if (this.waiting || this.retryAtMs === undefined) return false;
    this.retryAtMs = undefined;
    return true;
  }

  /** Sends within OUTBOX_COALESCE_MS: the changes of one burst (an answer, then both dones) go
   * out in one send, one directory update instead of one per change. */
  sendSoon(ctx: DurableObjectState, context: Record<string, unknown>): void {
    if (this.sendScheduled) return;
    this.sendScheduled = true;
    ctx.waitUntil(scheduler.wait(OUTBOX_COALESCE_MS).then(() => {
      this.sendScheduled = false;
      return this.sendOrWait(context);
    }));
  }

  /** Sends every waiting row to its consumers and deletes it; one send at a time, and rows written
   * while one runs go in the next, at once. Throws when a consumer could not take them (they stay
   * for the next try). */
  flush(): Promise<void> {
    this.sending ??= (async () => {
      try {
        do await this.send(); while (this.waiting);
      } finally {
        this.sending = undefined;
      }
    })();
    return this.sending;
  }

  private async send(): Promise<void> {
    const rows = [...this.storage.kv.list<OutboxRow>({ prefix: PREFIX })];
    if (!rows.length) {
      this.waiting = false;
      return;
    }
    // The directory keeps each room's newest state only: one update per room and flush (rows are
    // in seq order, so the last one of a room is its newest).
    const newest = new Map<string, DirectoryUpdate>();
    for (const [, row] of rows) {
      for (const entry of row.entries) {
        newest.set(entry.event.room.name, { kind: row.kind, seq: entry.seq, room: entry.event.room,
          finished: entry.event.event === "room_finished" });
      }
    }
    const shards = new Map<number, DirectoryUpdate[]>();
    for (const update of newest.values()) {
      const shard = directoryShard(update.room.name);
      shards.set(shard, [...(shards.get(shard) ?? []), update]);
    }
    await Promise.all([...shards].map(([shard, updates]) => this.env.ROOM_DIRECTORY.getByName(`shard-${shard}`).record(updates)));
    const urls = webhookUrls(this.env.WEBHOOK_URLS);
    const messages = rows.flatMap(([, row]) => row.entries.flatMap((entry) => urls.map((url) => ({
      body: { v: 1, url, id: entry.id, event: entry.event.event, body: entry.body } satisfies WebhookDelivery,
      contentType: "json" as const,
    }))));
    for (let i = 0; i < messages.length; i += QUEUE_BATCH) {
      await this.env.OPERATOR_WEBHOOKS.sendBatch(messages.slice(i, i + QUEUE_BATCH));
    }
    for (const [key] of rows) this.storage.kv.delete(key);
    // Rows written while these were sent wait for the next flush.
    this.waiting = !this.storage.kv.list({ prefix: PREFIX, limit: 1 })[Symbol.iterator]().next().done;
  }
}

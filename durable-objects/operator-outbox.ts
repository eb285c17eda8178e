// The outbox of an object whose rooms operators see (a call, a LiveKit room, an audio room). An
// event is written here in the same storage transaction as the state change it reports, so there
// is never an event for a change that was not recorded, and none is lost for one that was: the
// rows stay until both of their consumers took them, the room directory (for RoomService) and the
// webhook queue (one message per event and URL, for worker/webhook-delivery.ts). Sending starts at
// once; whatever is still here when the object wakes again (after a reset cut a send short) or
// when its alarm fires (the object brings it forward to OUTBOX_RETRY_MS while rows wait) is sent
// again. A row sent twice is harmless: the directory keeps each room's newest update by sequence,
// and a webhook receiver sees the same event id and body (LiveKit's webhooks are at least once too).
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

/** One event waiting to be sent. Its webhook body is made when it is sent, and only when a
 * webhook URL is configured: it follows from the event and its id alone (webhookBody), so a resend
 * carries the same bytes, and a deployment without webhooks never builds one. */
export interface OutboxEntry {
  id: string;
  /** Orders the room's updates in the directory (see RoomDirectory.record). */
  seq: number;
  event: OperatorEvent;
}

/** The events of one state change: one row, so a change costs one row written and one deleted
 * however many events it has. */
interface OutboxRow {
  kind: RoomKind;
  entries: OutboxEntry[];
}

/** Gives `events` their ids and seqs above `lastSeq`. Milliseconds × 1000, then
 * one more per event: above every seq the room used before, across wakes too, since no object
 * wakes twice within the same millisecond. */
export function outboxEntries(events: OperatorEvent[], lastSeq: number): OutboxEntry[] {
  return events.map((event) => {
    const seq = Math.max(lastSeq + 1, event.at * 1000);
    lastSeq = seq;
    return { id: newEventId(), seq, event };
  });
}

/** Hands `entries` (in seq order) to both consumers: the room directory, one newest update per
 * room, and the webhook queue, one message per event and URL. Throws if either could not take them. */
export async function deliverOperatorEvents(env: Env, entries: { kind: RoomKind; entry: OutboxEntry }[]): Promise<void> {
  const newest = new Map<string, DirectoryUpdate>();
  for (const { kind, entry } of entries) {
    newest.set(entry.event.room.name, { kind, seq: entry.seq, room: entry.event.room,
      finished: entry.event.event === "room_finished" });
  }
  const shards = new Map<number, DirectoryUpdate[]>();
  for (const update of newest.values()) {
    const shard = directoryShard(update.room.name);
    shards.set(shard, [...(shards.get(shard) ?? []), update]);
  }
  await Promise.all([...shards].map(([shard, updates]) => env.ROOM_DIRECTORY.getByName(`shard-${shard}`).record(updates)));
  const urls = webhookUrls(env.WEBHOOK_URLS);
  const messages = urls.length === 0 ? [] : entries.flatMap(({ entry }) => {
    const body = webhookBody(entry.event, entry.id);
    return urls.map((url) => ({
      body: { v: 1, url, id: entry.id, event: entry.event.event, body } satisfies WebhookDelivery,
      contentType: "json" as const,
    }));
  });
  for (let i = 0; i < messages.length; i += QUEUE_BATCH) {
    await env.OPERATOR_WEBHOOKS.sendBatch(messages.slice(i, i + QUEUE_BATCH));
  }
}

/** When and how often an outbox sends: at once or after a burst, one send at a time, again from
 * the object's alarm while something waits. What waits, and where, is the subclass's. */
export abstract class OutboxSender {
  private sending: Promise<void> | undefined;
  /** While events wait: when the object's alarm must come by to send them again. */
  private retryAtMs: number | undefined;
  /** A send is scheduled (sendSoon). */
  private sendScheduled = false;

  /** Whether events wait to be sent: the object keeps its alarm within OUTBOX_RETRY_MS meanwhile. */
  abstract get pending(): boolean;
  /** Sends what waits now; throws when a consumer could not take it (it waits for the next try). */
  protected abstract sendWaiting(): Promise<void>;

  /** When the object's alarm must come by to send waiting events again; Infinity when none wait. */
  retryAt(): number {
    return this.pending ? (this.retryAtMs ??= Date.now() + OUTBOX_RETRY_MS) : Infinity;
  }

  /** The object's alarm fired: a retry from now on counts from now. */
  alarmFired(): void {
    this.retryAtMs = undefined;
  }

  /**
   * Sends what waits; a consumer that could not take it is logged and the events wait for
   * `retryAt`. True when this send emptied an outbox that had a retry time: the object may then
   * bring its alarm back to its own deadlines.
   */
  async sendOrWait(context: Record<string, unknown>): Promise<boolean> {
    try {
      await this.flush();
    } catch (err) {
      console.warn("operator events not sent yet", { ...context, err: String(err) });
    }
    if (this.pending || this.retryAtMs === undefined) return false;
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

  /** Sends everything waiting; one send at a time, and events written while one runs go in the
   * next, at once. Throws when a consumer could not take them (they stay for the next try). */
  flush(): Promise<void> {
    this.sending ??= (async () => {
      try {
        do await this.sendWaiting(); while (this.pending);
      } finally {
        this.sending = undefined;
      }
    })();
    return this.sending;
  }
}

/** The outbox of a room object: rows of its own beside the room's state. */
export class OperatorOutbox extends OutboxSender {
  /** Rows may be waiting (written, or found on wake); false once a send emptied the outbox. */
  private waiting: boolean;
  private lastSeq = 0;

  constructor(private readonly storage: DurableObjectStorage, private readonly env: Env, private readonly kind: RoomKind) {
    super();
    this.waiting = OperatorOutbox.holdsRows(storage);
  }

  /** Whether `storage` holds rows not sent yet. */
  static holdsRows(storage: DurableObjectStorage): boolean {
    return !storage.kv.list({ prefix: PREFIX, limit: 1 })[Symbol.iterator]().next().done;
  }

  get pending(): boolean {
    return this.waiting;
  }

  /**
   * Writes the rows of `events`. Call it in the same synchronous block as the write of the state
   * change (or inside its `transactionSync`): the object's storage commits both at once or neither.
   */
  write(events: OperatorEvent[]): void {
    if (!events.length) return;
    const entries = outboxEntries(events, this.lastSeq);
    this.lastSeq = entries.at(-1)!.seq;
    this.storage.kv.put(`${PREFIX}${String(entries[0].seq).padStart(17, "0")}`, { kind: this.kind, entries } satisfies OutboxRow);
    this.waiting = true;
  }

  protected async sendWaiting(): Promise<void> {
    const rows = [...this.storage.kv.list<OutboxRow>({ prefix: PREFIX })];
    if (!rows.length) {
      this.waiting = false;
      return;
    }
    await deliverOperatorEvents(this.env, rows.flatMap(([, row]) => row.entries.map((entry) => ({ kind: row.kind, entry }))));
    for (const [key] of rows) this.storage.kv.delete(key);
    // Rows written while these were sent wait for the next flush.
    this.waiting = OperatorOutbox.holdsRows(this.storage);
  }
}

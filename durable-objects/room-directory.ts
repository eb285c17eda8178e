// One shard of the room directory: the rooms whose names hash to it (model/operator-events.ts
// directoryShard), for RoomService's ListRooms and for finding which object holds a room. Rooms are
// spread over ROOM_DIRECTORY_SHARDS objects, so no one object takes every room's writes; ListRooms
// asks every shard. Each room's row is replaced by its newest update (by the room's own event
// sequence), so an update delivered twice or out of order changes nothing, and a room's row is
// deleted when it finishes: a room costs its directory one insert and one delete, plus an update
// per send that changed it in between. A room's updates come from its one object, which sends them
// in order, one send at a time (operator-outbox.ts), so nothing can follow its finish but the rare
// repeat of an older send cut short by a reset; the shard remembers recently finished rooms in
// memory to refuse those (RECENTLY_FINISHED), instead of keeping a tombstone row for each.
import { DurableObject } from "cloudflare:workers";
import { DIRECTORY_RECENTLY_FINISHED, MAX_LISTED_ROOMS } from "../model/limits";
import type { OperatorRoom, RoomKind } from "../model/operator-events";

const SCHEMA = `CREATE TABLE IF NOT EXISTS rooms (
  name TEXT PRIMARY KEY, kind TEXT NOT NULL, seq INTEGER NOT NULL, room TEXT NOT NULL,
  metadata TEXT, finished_at INTEGER)`;

/** A room as its object last recorded it. `seq` orders one room's updates. */
export interface DirectoryUpdate {
  kind: RoomKind;
  seq: number;
  room: OperatorRoom;
  finished: boolean;
}

export interface DirectoryEntry {
  kind: RoomKind;
  room: OperatorRoom;
}

interface RoomRow extends Record<string, SqlStorageValue> {
  name: string;
  kind: string;
  seq: number;
  room: string;
  metadata: string | null;
  finished_at: number | null;
}

export class RoomDirectory extends DurableObject<Env> {
  /** Rooms finished lately, by name, with their finishing seq, oldest first (memory only; see the
   * header). */
  private readonly finished = new Map<string, number>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(SCHEMA);
    // Tombstones an earlier version kept for finished rooms (writes nothing when there are none).
    ctx.storage.sql.exec("DELETE FROM rooms WHERE finished_at IS NOT NULL");
  }

  /** Applies each room's update unless a newer one is already here: an open room's row is
   * inserted or replaced, a finished one's deleted. The statements run in one synchronous block,
   * so the runtime commits them as one transaction (no explicit transactionSync: its savepoint cost
   * a third of the shard's write rate in bench/room-directory-bench.mjs). */
  async record(updates: DirectoryUpdate[]): Promise<void> {
    for (const update of updates) {
      const name = update.room.name;
      if ((this.finished.get(name) ?? -1) >= update.seq) continue;
      if (update.finished) {
        this.ctx.storage.sql.exec("DELETE FROM rooms WHERE name = ? AND seq < ?", name, update.seq);
        this.finished.delete(name);
        this.finished.set(name, update.seq);
        if (this.finished.size > DIRECTORY_RECENTLY_FINISHED) this.finished.delete(this.finished.keys().next().value!);
        continue;
      }
      this.ctx.storage.sql.exec(
        `INSERT INTO rooms (name, kind, seq, room) VALUES (?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, seq = excluded.seq, room = excluded.room
         WHERE excluded.seq > rooms.seq`,
        name, update.kind, update.seq, JSON.stringify(update.room));
    }
  }

  /** Open rooms, all or those named, with the metadata an operator set in place of their own. */
  async list(names?: string[]): Promise<DirectoryEntry[]> {
    const rows = names?.length
      ? names.flatMap((name) => this.ctx.storage.sql.exec<RoomRow>(
        "SELECT * FROM rooms WHERE name = ? AND finished_at IS NULL", name).toArray())
      : this.ctx.storage.sql.exec<RoomRow>(
        "SELECT * FROM rooms WHERE finished_at IS NULL ORDER BY name LIMIT ?", MAX_LISTED_ROOMS).toArray();
    return rows.map(entryOf);
  }

  async lookup(name: string): Promise<DirectoryEntry | null> {
    const row = this.ctx.storage.sql.exec<RoomRow>("SELECT * FROM rooms WHERE name = ? AND finished_at IS NULL", name)
      .toArray()[0];
    return row ? entryOf(row) : null;
  }

  /** UpdateRoomMetadata: kept here, in the operator's view of the room, in place of its own. */
  async setMetadata(name: string, metadata: string): Promise<DirectoryEntry | null> {
    this.ctx.storage.sql.exec("UPDATE rooms SET metadata = ? WHERE name = ? AND finished_at IS NULL", metadata, name);
    return this.lookup(name);
  }

}

function entryOf(row: RoomRow): DirectoryEntry {
  const room = JSON.parse(row.room) as OperatorRoom;
  return { kind: row.kind as RoomKind, room: row.metadata === null ? room : { ...room, metadata: row.metadata } };
}

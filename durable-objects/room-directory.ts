// One shard of the room directory: the rooms whose names hash to it (model/operator-events.ts
// directoryShard), for RoomService's ListRooms and for finding which object holds a room. Rooms are
// spread over ROOM_DIRECTORY_SHARDS objects, so no one object takes every room's writes; ListRooms
// asks every shard. Each room's row is replaced by its newest update (by the room's own event
// sequence), so updates delivered twice or out of order (the outbox sends at least once) change
// nothing; a finished room stays as a tombstone for ROOM_TOMBSTONE_MS, so a late update of it
// cannot bring it back.
import { DurableObject } from "cloudflare:workers";
import { MAX_LISTED_ROOMS, ROOM_TOMBSTONE_MS } from "../model/limits";
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
  /** Whether an alarm is set (read once per wake, then kept). */
  private sweepArmed = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(SCHEMA);
  }

  /** Applies each room's update unless a newer one is already here. The statements run in one
   * synchronous block, so the runtime commits them as one transaction (no explicit transactionSync:
   * its savepoint cost a third of the shard's write rate in bench/room-directory-bench.mjs). */
  async record(updates: DirectoryUpdate[]): Promise<void> {
    const now = Date.now();
    let finished = false;
    for (const update of updates) {
      finished ||= update.finished;
      this.ctx.storage.sql.exec(
        `INSERT INTO rooms (name, kind, seq, room, finished_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, seq = excluded.seq, room = excluded.room,
           finished_at = excluded.finished_at
         WHERE excluded.seq > rooms.seq`,
        update.room.name, update.kind, update.seq, JSON.stringify(update.room), update.finished ? now : null);
    }
    // Tombstones are swept by the alarm, at most once per ROOM_TOMBSTONE_MS.
    if (finished) await this.armSweep(now);
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

  async alarm(): Promise<void> {
    this.sweepArmed = false;
    const now = Date.now();
    this.ctx.storage.sql.exec("DELETE FROM rooms WHERE finished_at IS NOT NULL AND finished_at <= ?", now - ROOM_TOMBSTONE_MS);
    const left = this.ctx.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM rooms WHERE finished_at IS NOT NULL").one().n;
    if (left > 0) await this.armSweep(now);
  }

  /** A tombstone is swept between ROOM_TOMBSTONE_MS and twice that after its room finished. */
  private async armSweep(now: number): Promise<void> {
    if (this.sweepArmed) return;
    this.sweepArmed = (await this.ctx.storage.getAlarm()) !== null;
    if (!this.sweepArmed) {
      await this.ctx.storage.setAlarm(now + ROOM_TOMBSTONE_MS);
      this.sweepArmed = true;
    }
  }
}

function entryOf(row: RoomRow): DirectoryEntry {
  const room = JSON.parse(row.room) as OperatorRoom;
  return { kind: row.kind as RoomKind, room: row.metadata === null ? room : { ...room, metadata: row.metadata } };
}

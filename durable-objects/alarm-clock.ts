// A Durable Object's one alarm, set only when its time changes. Every setAlarm / deleteAlarm is a
// billed storage write, and the objects recompute their next deadline after every event, which
// mostly lands on the time already set (a call's 12 h maximum age, a queued offer's deadline).

export class AlarmClock {
  /** The alarm time as last set or read; undefined until read since the object woke. */
  private at: number | null | undefined;

  constructor(private readonly storage: DurableObjectStorage) {}

  /** Arms the alarm for `at` (ms), or clears it for null; a no-op when that is already so. */
  async set(at: number | null): Promise<void> {
    if (this.at === undefined) {
      const stored = await this.storage.getAlarm();
      // A set that ran while this one read wins: its value is the newer one.
      if (this.at === undefined) this.at = stored;
    }
    if (this.at === at) return;
    this.at = at;
    if (at === null) await this.storage.deleteAlarm();
    else await this.storage.setAlarm(at);
  }

  /**
   * Arms the alarm for `at` unless it is already set no later (and still ahead): an object whose
   * alarm handler re-schedules from its state can let an early alarm fire and re-arm, instead of
   * writing the alarm back and forth as deadlines come and go (the operator outbox's retry).
   */
  async setNoLaterThan(at: number): Promise<void> {
    if (this.at === undefined) {
      const stored = await this.storage.getAlarm();
      if (this.at === undefined) this.at = stored;
    }
    if (this.at !== null && this.at <= at && this.at > Date.now()) return;
    await this.set(at);
  }

  /** The object knows its alarm without reading it: an object with no storage yet has none. */
  knownUnset(): void {
    this.at ??= null;
  }

  /** The alarm fired, so the runtime no longer holds it: the next `set` writes whatever it is told. */
  fired(): void {
    this.at = null;
  }
}

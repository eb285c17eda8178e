// A call's operator events, kept inside its record (call-record.ts `outbox`) rather than in rows of
// their own: a call writes its record on every change that has events anyway, so the events ride
// in that same row and cost no write of their own. Rows of their own cost two writes per change
// (one put, one delete once sent), which took a call setup from 3 rows written to 9.
//
// What was sent is known in memory (`sentThrough`) and dropped from the record at its next write.
// After a send, the record still holds what went out; the call writes it once more, pruned, when no
// other write comes first (CALL_OUTBOX_PRUNE_MS, or at once for an ended call, which writes nothing
// more): else a wake would send those events again. A wake sends whatever the record holds, since
// no memory says it went: at least once, with the same event ids, as LiveKit's webhooks are.
import { CALL_OUTBOX_PRUNE_MS } from "../model/limits";
import type { OperatorEvent } from "../model/operator-events";
import { deliverOperatorEvents, outboxEntries, OutboxSender, type OutboxEntry } from "./operator-outbox";

export class CallOutbox extends OutboxSender {
  /** Entries up to this seq were taken by both consumers (this instance's memory only). */
  private sentThrough = 0;
  private pruneTimer: number | null = null;

  /**
   * `held`: the entries the record holds now (as last written). `prune`: the call writes its
   * record again, which drops the sent ones (see `unsent`); `ended` says whether the call will
   * write nothing more of its own accord.
   */
  constructor(private readonly env: Env, private readonly held: () => OutboxEntry[],
    private readonly prune: () => void, private readonly ended: () => boolean) {
    super();
  }

  get pending(): boolean {
    return this.held().some((e) => e.seq > this.sentThrough);
  }

  /** The entries the record is to hold at its next write: those not sent yet, then `events`'. */
  next(events: OperatorEvent[]): OutboxEntry[] {
    const unsent = this.held().filter((e) => e.seq > this.sentThrough);
    clearTimeout(this.pruneTimer);
    this.pruneTimer = null;
    const lastSeq = Math.max(this.sentThrough, ...this.held().map((e) => e.seq));
    return [...unsent, ...outboxEntries(events, lastSeq)];
  }

  protected async sendWaiting(): Promise<void> {
    const entries = this.held().filter((e) => e.seq > this.sentThrough);
    if (!entries.length) return;
    await deliverOperatorEvents(this.env, entries.map((entry) => ({ kind: "call" as const, entry })));
    this.sentThrough = Math.max(this.sentThrough, entries.at(-1)!.seq);
    if (this.pending || this.pruneTimer !== null) return;
    if (this.ended()) this.prune();
    else this.pruneTimer = setTimeout(() => {
      this.pruneTimer = null;
      if (this.held().some((e) => e.seq <= this.sentThrough)) this.prune();
    }, CALL_OUTBOX_PRUNE_MS);
  }
}

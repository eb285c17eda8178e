// The operator's view of an audio relay room (seed 003): who is in it, recorded with the events
// of every change (model/operator-events.ts audioRoomEvents) in one transaction, and sent through
// the outbox. The room keeps its calls in socket attachments and nothing in storage; membership is
// the one thing it writes, and only when someone comes or goes, never per frame.
import { audioParticipant, audioRoom, audioRoomEvents, audioRoomReported, type AudioRoomMembers, type LeaveReason,
  type OperatorParticipant, type OperatorRoom } from "../model/operator-events";
import { OUTBOX_RETRY_MS } from "../model/limits";
import { newEventId } from "../codecs/livekit-operator";
import { OperatorOutbox } from "./operator-outbox";

const MEMBERS_KEY = "operator-members";

export class AudioRoomOperator {
  private readonly outbox: OperatorOutbox;
  /** The record as last read or written; undefined until read since the object woke. */
  private record: AudioRoomMembers | undefined | null = null;
  private readonly reported: boolean;

  constructor(private readonly ctx: DurableObjectState, env: Env, private readonly name: string) {
    this.outbox = new OperatorOutbox(ctx.storage, env, "audio");
    this.reported = audioRoomReported(name);
    // Rows a reset kept from being sent: send them now.
    if (this.outbox.pending) ctx.waitUntil(this.send());
  }

  /** `live`: the identities with a live socket now. Records a change of membership with its events. */
  note(live: string[], removed?: LeaveReason): void {
    if (!this.reported) return;
    const prev = this.members();
    const { record, events } = audioRoomEvents(this.name, prev, live, Date.now(), newEventId().replace("EV_", "RM_"), removed);
    if (!events.length) return;
    this.record = record;
    this.ctx.storage.transactionSync(() => {
      if (record) this.ctx.storage.kv.put(MEMBERS_KEY, record);
      else this.ctx.storage.kv.delete(MEMBERS_KEY);
      this.outbox.write(events);
    });
    this.ctx.waitUntil(this.armRetry().then(() => this.send()));
  }

  view(): { room: OperatorRoom; participants: OperatorParticipant[] } | undefined {
    const record = this.members();
    if (!record) return undefined;
    const members = Object.entries(record.members);
    return { room: audioRoom(this.name, record, members.length),
      participants: members.map(([identity, at]) => audioParticipant(this.name, identity, at)) };
  }

  /** The alarm fired: sends waiting rows, and comes again while some still wait. */
  async alarm(): Promise<void> {
    await this.send();
    if (this.outbox.pending) await this.armRetry();
  }

  private members(): AudioRoomMembers | undefined {
    if (this.record === null) this.record = this.ctx.storage.kv.get<AudioRoomMembers>(MEMBERS_KEY);
    return this.record;
  }

  /** While rows wait, the alarm comes within OUTBOX_RETRY_MS (it may already be set for the sweep). */
  private async armRetry(): Promise<void> {
    const at = Date.now() + OUTBOX_RETRY_MS;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(at);
  }

  private async send(): Promise<void> {
    try {
      await this.outbox.flush();
    } catch (err) {
      console.warn("operator events not sent yet", { room: this.name, err: String(err) });
    }
  }
}

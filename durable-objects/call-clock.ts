// Who keeps each deadline of a call (model/call-model.ts `deadlines`). One alarm serves every
// deadline that no door serves; a deadline a connected side's door may serve (the offer deadline
// for the caller, the wait for the caller's done for the callee) is kept by that door's clock
// instead, told with a `wake` push, since a waiting Worker costs nothing and an alarm costs a
// write. The alarm is then written once per call (its maximum age), not again for each deadline.
import { deadlines, SIDES, type CallState, type Side } from "../model/call-model";
import { AlarmClock } from "./alarm-clock";
import { sendPush } from "./call-record";

export class CallClock {
  private readonly alarm: AlarmClock;
  /** The deadline each socket's door was last asked to serve (memory only: after a wake the
   * doors are told again, which changes nothing for them). */
  private readonly told = new WeakMap<WebSocket, number | null>();

  /** `socketOf`: the open socket following a side, if any (its door serves that side's deadlines). */
  constructor(storage: DurableObjectStorage, private readonly socketOf: (side: Side) => WebSocket | undefined) {
    this.alarm = new AlarmClock(storage);
  }

  /** The object has no storage yet, so no alarm to read back. */
  knownUnset(): void {
    this.alarm.knownUnset();
  }

  /** The alarm fired: the runtime no longer holds it. */
  fired(): void {
    this.alarm.fired();
  }

  /** Brings the alarm forward to the soonest deadline of `call` that no connected door serves, or
   * to `also` (another time the object must wake at: its outbox's retry; Infinity for none). */
  async schedule(call: CallState | undefined, also: number): Promise<void> {
    if (!call && also === Infinity) return;
    const times = call ? deadlines(call).filter((d) => !(d.servedBy && this.socketOf(d.servedBy))).map((d) => d.at) : [];
    await this.alarm.setNoLaterThan(Math.min(...times, also));
  }

  /** Tells each connected side's door the deadline it serves (or none), when that changed. */
  tellDoors(call: CallState | undefined): void {
    for (const side of SIDES) {
      const ws = this.socketOf(side);
      if (!ws) continue;
      const at = call ? deadlines(call).find((d) => d.servedBy === side)?.at ?? null : null;
      if (this.told.get(ws) === at) continue;
      this.told.set(ws, at);
      sendPush(ws, { wake: at });
    }
  }
}

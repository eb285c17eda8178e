// Waiting for a SIP account's status, for the workers tests and the e2e tests alike (no runtime's
// own imports here).
import type { Client } from "@connectrpc/connect";
import { SipStatus_StatusType as S, type Sip, type SipStatus } from "../proto/gen/ondewo/sip/sip_pb";

/** The account's status once it is `type`, asked every `pollMs`; throws naming the last one after `timeoutMs`. */
export async function waitForSipStatus(sip: Client<typeof Sip>, type: S, timeoutMs = 10_000, pollMs = 100): Promise<SipStatus> {
  const until = Date.now() + timeoutMs;
  let last: SipStatus | undefined;
  while (Date.now() < until) {
    last = await sip.getSipStatus({});
    if (last.statusType === type) return last;
    await new Promise((r) => setTimeout(r, pollMs));
  }
  throw new Error(`status stayed ${last ? S[last.statusType] : "unknown"}, expected ${S[type]}`);
}

// The SIP door's clients for the e2e tests: the generated ondewo.sip.Sip client over HTTP/1.1 with
// an account's Basic credentials, an account created with a bearer token for its name (the only
// way one is created), and (from ../sip-status.ts) a wait for an account's status.
import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Sip } from "../../proto/gen/ondewo/sip/sip_pb";
export { waitForSipStatus } from "../sip-status";
import { tokenFor } from "./server";

export type SipClient = Client<typeof Sip>;

/** Where the client connects: the server's URL, or transport options of its own (restart.e2e's
 * clients keep no pooled sockets across a restart). */
export type SipTarget = string | Parameters<typeof createConnectTransport>[0];

function sipWith(target: SipTarget, authorization: () => string | Promise<string>): SipClient {
  const options = typeof target === "string" ? { baseUrl: target, httpVersion: "1.1" as const } : target;
  return createClient(Sip, createConnectTransport({ ...options,
    interceptors: [(next) => async (req) => { req.header.set("authorization", await authorization()); return next(req); }],
  }));
}

/** A client acting for `account` with its password (Basic). */
export function sipClient(target: SipTarget, account: string, password: string): SipClient {
  return sipWith(target, () => `Basic ${btoa(`${account}:${password}`)}`);
}

/** Creates account `name`: RegisterAccount with a bearer token whose `sub` is the name. */
export async function registerSipAccount(target: SipTarget, name: string, password: string): Promise<void> {
  await sipWith(target, async () => `Bearer ${await tokenFor(name)}`).registerAccount({ accountName: name, password });
}


// Starts `wrangler dev` (local Durable Objects, no account) on a free port for the e2e suite and
// provides its URL and auth secret to the tests through vitest's inject(), and the file its output
// goes to, for tests of what the server logs.
import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { E2E_AUTH_SECRET, E2E_LIVEKIT_API_KEY, E2E_LIVEKIT_API_SECRET, freePort, startOwnServer } from "./own-server";
/** Where docs/operators.md tells a reader to point WEBHOOK_URLS, and starts its receiver. */
const DOCUMENTED_WEBHOOK_URL = "http://127.0.0.1:8788/livekit-webhook";

declare module "vitest" {
  export interface ProvidedContext {
    baseUrl: string;
    authSecret: string;
    livekitApiKey: string;
    livekitApiSecret: string;
    /** The port of 127.0.0.1 that WEBHOOK_URLS points at; a test listens there (operators.e2e.test.ts). */
    webhookPort: number;
    /** A file holding everything wrangler dev (and the Worker through it) printed so far. */
    serverLog: string;
  }
}

export default async function setup(project: TestProject) {
  const port = await freePort();
  const webhookPort = await freePort();
  const persist = mkdtempSync(join(tmpdir(), "wrangler-e2e-"));
  const logDir = mkdtempSync(join(tmpdir(), "wrangler-e2e-log-"));
  const serverLog = join(logDir, "wrangler.log");
  const server = await startOwnServer(port, persist, {
    // The second URL is the receiver docs/operators.md starts, at the address its readers configure.
    vars: { WEBHOOK_URLS: `http://127.0.0.1:${webhookPort}/livekit-webhook,${DOCUMENTED_WEBHOOK_URL}` },
    onOutput: (d) => appendFileSync(serverLog, d),
  });
  project.provide("baseUrl", server.baseUrl);
  project.provide("authSecret", E2E_AUTH_SECRET);
  project.provide("livekitApiKey", E2E_LIVEKIT_API_KEY);
  project.provide("livekitApiSecret", E2E_LIVEKIT_API_SECRET);
  project.provide("webhookPort", webhookPort);
  project.provide("serverLog", serverLog);
  return async () => {
    await server.stop();
    if (process.env.E2E_LOG) console.log(server.output());
    rmSync(persist, { recursive: true, force: true });
    rmSync(logDir, { recursive: true, force: true });
  };
}

// Starts `wrangler dev` (local Durable Objects, no account) on a free port for the e2e suite and
// provides its URL and auth secret to the tests through vitest's inject(), and the file its output
// goes to, for tests of what the server logs.
import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";

export const E2E_AUTH_SECRET = "e2e-secret";
/** LiveKit API key (wrangler.toml [vars]) and the secret the e2e tokens are signed with. */
export const E2E_LIVEKIT_API_KEY = "devkey";
export const E2E_LIVEKIT_API_SECRET = "e2e-livekit-secret-e2e-livekit-secret";
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

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

async function waitForHealth(url: string, child: ChildProcess, log: () => string): Promise<void> {
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited (${child.exitCode}):\n${log()}`);
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) return;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`wrangler dev did not become healthy:\n${log()}`);
}

export default async function setup(project: TestProject) {
  const port = await freePort();
  const webhookPort = await freePort();
  const persist = mkdtempSync(join(tmpdir(), "wrangler-e2e-"));
  const logDir = mkdtempSync(join(tmpdir(), "wrangler-e2e-log-"));
  const serverLog = join(logDir, "wrangler.log");
  let output = "";
  const child = spawn("npx", ["wrangler", "dev", "--port", String(port), "--ip", "127.0.0.1",
    "--persist-to", persist, "--var", `AUTH_SECRET:${E2E_AUTH_SECRET}`, "--var", "DEV_TOKENS:1",
    "--var", `LIVEKIT_API_KEY:${E2E_LIVEKIT_API_KEY}`, "--var", `LIVEKIT_API_SECRET:${E2E_LIVEKIT_API_SECRET}`,
    // The second URL is the receiver docs/operators.md starts, at the address its readers configure.
    "--var", `WEBHOOK_URLS:http://127.0.0.1:${webhookPort}/livekit-webhook,${DOCUMENTED_WEBHOOK_URL}`,
    "--show-interactive-dev-session=false"],
    // Own process group, so teardown stops wrangler and its workerd children, not just npx.
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, CI: "1" }, detached: true });
  const keep = (d: Buffer) => { output += d; appendFileSync(serverLog, d); };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitForHealth(baseUrl, child, () => output);
  project.provide("baseUrl", baseUrl);
  project.provide("authSecret", E2E_AUTH_SECRET);
  project.provide("livekitApiKey", E2E_LIVEKIT_API_KEY);
  project.provide("livekitApiSecret", E2E_LIVEKIT_API_SECRET);
  project.provide("webhookPort", webhookPort);
  project.provide("serverLog", serverLog);
  return async () => {
    try { process.kill(-child.pid!, "SIGTERM"); } catch { /* already gone */ }
    await new Promise((r) => setTimeout(r, 500));
    if (process.env.E2E_LOG) console.log(output);
    rmSync(persist, { recursive: true, force: true });
    rmSync(logDir, { recursive: true, force: true });
  };
}

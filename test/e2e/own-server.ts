// Starts a `wrangler dev` for the e2e tests: the one global-setup.ts starts for the whole suite,
// and the own servers of the tests that stop and start theirs (restart.e2e.test.ts). Same flags and
// secrets, on a port and a state directory the caller chooses, so a second start serves the state
// the first one left.
import { spawn } from "node:child_process";
import { createServer } from "node:net";

export const E2E_AUTH_SECRET = "e2e-secret";
/** LiveKit API key (wrangler.toml [vars]) and the secret the e2e tokens are signed with. */
export const E2E_LIVEKIT_API_KEY = "devkey";
export const E2E_LIVEKIT_API_SECRET = "e2e-livekit-secret-e2e-livekit-secret";

/** wrangler dev builds and starts workerd in this long on a loaded machine; past it, the start failed. */
const START_WITHIN_MS = 90_000;
/** After SIGTERM, wrangler stops its workerd processes within this long; then they are killed. */
const STOP_GRACE_MS = 5_000;

export interface OwnServer {
  baseUrl: string;
  /** Everything wrangler and the Worker printed so far. */
  output(): string;
  /** Stops wrangler and its workerd processes (its process group) and waits until they are gone. */
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts wrangler dev on 127.0.0.1:`port` with its Durable Objects' state in `persistTo`;
 * `vars` are set besides the secrets, and `onOutput` sees everything it prints as it comes. */
export async function startOwnServer(port: number, persistTo: string,
  { vars = {}, onOutput }: { vars?: Record<string, string>; onOutput?: (chunk: Buffer) => void } = {}): Promise<OwnServer> {
  let output = "";
  const extraVars = Object.entries(vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]);
  const child = spawn("npx", ["wrangler", "dev", "--port", String(port), "--ip", "127.0.0.1",
    "--persist-to", persistTo, "--var", `AUTH_SECRET:${E2E_AUTH_SECRET}`, "--var", "DEV_TOKENS:1",
    "--var", `LIVEKIT_API_KEY:${E2E_LIVEKIT_API_KEY}`, "--var", `LIVEKIT_API_SECRET:${E2E_LIVEKIT_API_SECRET}`,
    ...extraVars, "--show-interactive-dev-session=false"],
    // Own process group, so stopping it stops wrangler and its workerd children, not just npx.
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, CI: "1" }, detached: true });
  const keep = (d: Buffer) => { output += d; onOutput?.(d); };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const pgid = child.pid!;
  const server: OwnServer = {
    baseUrl: `http://127.0.0.1:${port}`,
    output: () => output,
    async stop() {
      try { process.kill(-pgid, "SIGTERM"); } catch { return; }
      const until = Date.now() + STOP_GRACE_MS;
      while (groupAlive(pgid) && Date.now() < until) await sleep(50);
      try { process.kill(-pgid, "SIGKILL"); } catch { /* gone */ }
      while (groupAlive(pgid)) await sleep(50);
    },
  };
  const until = Date.now() + START_WITHIN_MS;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited (${child.exitCode}):\n${output}`);
    try {
      const res = await fetch(`${server.baseUrl}/healthz`, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) return server;
    } catch { /* not up yet */ }
    await sleep(100);
  }
  await server.stop();
  throw new Error(`wrangler dev did not become healthy:\n${output}`);
}

// Tells the Workers types what `env` and `exports` from "cloudflare:workers" hold in this
// project (what `wrangler types` would generate, kept by hand beside the Env interface).
import type { Env as WorkerEnv } from "./env";

declare global {
  namespace Cloudflare {
    interface Env extends WorkerEnv {}
    interface GlobalProps {
      mainModule: typeof import("./index");
    }
  }
}

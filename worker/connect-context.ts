// Bindings reach Connect handlers through context values, never module globals: one Worker
// isolate serves many requests, and each request brings its own `env`.
import { createContextKey, type HandlerContext } from "@connectrpc/connect";

export const envKey = createContextKey<Env | undefined>(undefined, { description: "Worker bindings" });

export function envOf(ctx: HandlerContext): Env {
  const env = ctx.values.get(envKey);
  if (!env) throw new Error("Worker env missing from the Connect context");
  return env;
}

import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

import { TEST_AUTH_SECRET, TEST_LIVEKIT_API_KEY, TEST_LIVEKIT_API_SECRET } from "./test/test-secret.ts";

export default defineConfig({
  test: {
    projects: [
      {
        // Unit and integration tests inside workerd, against the real Worker and Durable Objects.
        plugins: [cloudflareTest({
          wrangler: { configPath: "./wrangler.toml" },
          miniflare: { bindings: {
            AUTH_SECRET: TEST_AUTH_SECRET,
            // SIP calls ring 3 s instead of 30 s, so ring-timeout tests stay short.
            SIP_RING_TIMEOUT_MS: "3000",
            // The one origin allowed credentialed CORS in test/security.test.ts.
            CORS_CREDENTIAL_ORIGINS: "https://app.example",
            LIVEKIT_API_KEY: TEST_LIVEKIT_API_KEY,
            LIVEKIT_API_SECRET: TEST_LIVEKIT_API_SECRET,
          } },
        })],
        test: { name: "workers", include: ["test/**/*.test.ts"], exclude: ["test/e2e/**"], testTimeout: 30_000 },
      },
      {
        // End-to-end: real clients in Node against `wrangler dev` started by the global setup.
        test: {
          name: "e2e",
          environment: "node",
          include: ["test/e2e/**/*.e2e.test.ts"],
          globalSetup: ["test/e2e/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 90_000,
          fileParallelism: false,
        },
      },
    ],
  },
});

/** The secret the Workers-runtime tests sign tokens with; vitest.config.ts binds it as AUTH_SECRET. */
export const TEST_AUTH_SECRET = "test-secret-for-vitest";

/** The LiveKit API key and secret of the Workers-runtime tests; vitest.config.ts binds them. */
export const TEST_LIVEKIT_API_KEY = "test-livekit-key";
export const TEST_LIVEKIT_API_SECRET = "test-livekit-secret-for-vitest-0123456789";

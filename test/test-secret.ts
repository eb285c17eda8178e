/** The secret the Workers-runtime tests sign tokens with; vitest.config.ts binds it as AUTH_SECRET. */
export const TEST_AUTH_SECRET = "test-secret-for-vitest";

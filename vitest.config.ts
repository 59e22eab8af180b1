// Two projects: fast pure unit tests, and lab tests that need root and the local lab fleet.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      { test: { name: "unit", include: ["test/unit/**/*.test.ts"], testTimeout: 60_000 } },
      {
        test: {
          name: "lab",
          include: ["test/lab/**/*.test.ts", "test/integration/**/*.test.ts"],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          fileParallelism: false,
          globalSetup: ["test/lab/globalSetup.ts"],
        },
      },
    ],
  },
});

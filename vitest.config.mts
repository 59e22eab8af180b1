// Projects: fast pure unit tests; lab tests that need root and the local lab fleet; and the lab's own
// lifecycle test (brings its own lab up and down, so it has no globalSetup).
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      { test: { name: "unit", include: ["test/unit/**/*.test.ts"], testTimeout: 60_000 } },
      {
        test: {
          name: "lab",
          include: ["test/lab/**/*.test.ts", "test/integration/**/*.test.ts"],
          exclude: ["test/lab/lifecycle.test.ts", "**/node_modules/**"],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          fileParallelism: false,
          globalSetup: ["test/lab/globalSetup.ts"],
        },
      },
      {
        test: {
          name: "lab-lifecycle",
          include: ["test/lab/lifecycle.test.ts"],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
    ],
  },
});

// Lint setup: typescript-eslint's recommended rules plus Pulumi's plugin (its rules need type information).
import tseslint from "typescript-eslint";
import pulumi from "@pulumi/eslint-plugin";

export default tseslint.config(
  {
    ignores: ["bin/", "node_modules/", "**/*.js", "**/*.mjs", "**/*.cjs", "bench/results/", "bench/.build/"],
  },
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    languageOptions: {
      parserOptions: { project: "./tsconfig.check.json", tsconfigRootDir: import.meta.dirname },
    },
    plugins: { "@pulumi": pulumi },
    rules: {
      "@pulumi/no-output-in-template-literal": "error",
      "@pulumi/no-output-instance-in-template-literal": "error",
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  // The layers: resources → runtime → core | host | ssh, and host → core | ssh. No import runs back up.
  ...layer("core", ["runtime", "resources", "host", "ssh"]),
  ...layer("ssh", ["runtime", "resources", "host", "core"]),
  ...layer("host", ["runtime", "resources"]),
  ...layer("runtime", ["resources"]),
);

/** Forbids provider/<folder> to import from the given sibling folders of provider/. */
function layer(folder, forbidden) {
  return [
    {
      files: [`provider/${folder}/**/*.ts`],
      rules: {
        "no-restricted-imports": [
          "error",
          {
            patterns: forbidden.map((other) => ({
              group: [`../${other}`, `../${other}/*`],
              message: `provider/${folder} must not import provider/${other}: the layers are resources → runtime → core | host | ssh`,
            })),
          },
        ],
      },
    },
  ];
}

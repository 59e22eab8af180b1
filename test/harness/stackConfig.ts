// A stack's effective config as the Pulumi CLI computes it without the CLI: the project's declared defaults
// (Pulumi.yaml `config:`) overlaid with the stack file (Pulumi.<stack>.yaml, in `stackConfigDir` if set).
import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";

export interface ConfigDeclaration {
  readonly type?: "string" | "integer" | "boolean" | "array";
  readonly description?: string;
  readonly default?: unknown;
  readonly items?: { readonly type: string };
  readonly secret?: boolean;
}

export interface ProjectFile {
  readonly name: string;
  readonly runtime: unknown;
  readonly main?: string;
  readonly stackConfigDir?: string;
  readonly config?: Record<string, ConfigDeclaration>;
}

export function readYaml(file: string): unknown {
  return yaml.load(fs.readFileSync(file, "utf8"));
}

export function readProject(projectDir: string): ProjectFile {
  return readYaml(path.join(projectDir, "Pulumi.yaml")) as ProjectFile;
}

export interface StackConfig {
  readonly project: ProjectFile;
  /** Key (without the project prefix) → value: declared defaults, then the stack's values. */
  readonly values: Record<string, unknown>;
  /** Keys the stack file sets that the project does not declare. */
  readonly undeclared: string[];
  /** Declared keys without a default that the stack does not set (the CLI refuses to run then). */
  readonly missing: string[];
}

export function stackConfig(projectDir: string, stack: string): StackConfig {
  const project = readProject(projectDir);
  const declared = project.config ?? {};
  const values: Record<string, unknown> = {};
  for (const [key, decl] of Object.entries(declared))
    if (decl.default !== undefined) values[key] = decl.default;
  const stackFile = path.join(projectDir, project.stackConfigDir ?? "", `Pulumi.${stack}.yaml`);
  const raw = (readYaml(stackFile) as { config?: Record<string, unknown> } | null)?.config ?? {};
  const undeclared: string[] = [];
  for (const [fullKey, value] of Object.entries(raw)) {
    const key = fullKey.startsWith(`${project.name}:`) ? fullKey.slice(project.name.length + 1) : fullKey;
    if (!(key in declared)) undeclared.push(key);
    values[key] = value;
  }
  const missing = Object.keys(declared).filter((k) => values[k] === undefined);
  return { project, values, undeclared, missing };
}

/** The config map `pulumi.runtime.setAllConfig` takes: `<project>:<key>` → string (JSON for non-strings). */
export function asRuntimeConfig(
  projectName: string,
  values: Record<string, unknown>,
): Record<string, string> {
  return Object.fromEntries(
    Object.entries(values).map(([k, v]) => [
      `${projectName}:${k}`,
      typeof v === "string" ? v : JSON.stringify(v),
    ]),
  );
}

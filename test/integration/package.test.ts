// Packaging: `npm pack` the built package and install the tarball, with npm and with pnpm, into a fresh project
// outside the repository that already has the current @pulumi/pulumi (the SDK is our peer): the project holds
// exactly one copy of the SDK. Then serialize a Container's provider by running a program there (the project's
// own SDK and installed package) and drive the real provider host started in that project against a lab host:
// the provider's runtime can only come from the project's own node_modules.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../harness/engine";
import { closeAll, revealMap, startProviderHost, urnFor } from "../harness/providerHost";
import { labExec, labExecOk, labHost, readLab } from "../lab/labHosts";

const lab = readLab();
const h1 = labHost("h1", lab);
/** The SDK our devDependency pins: what a user of the current release has. */
const SDK_VERSION = (
  JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "node_modules/@pulumi/pulumi/package.json"), "utf8")) as {
    version: string;
  }
).version;
const work = fs.mkdtempSync(path.join(os.tmpdir(), "pnc-pack-"));
let tarball = "";
let pnpm = "";

function run(cmd: string, args: string[], cwd: string, timeoutMs = 240_000): string {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** The program a user would write, run under mocks in the project: prints the Container's __provider. */
const PROGRAM = `
const pulumi = require("@pulumi/pulumi");
async function main() {
  await pulumi.runtime.setMocks({
    newResource: (a) => {
      if (a.type === "pulumi-nodejs:dynamic/nixos:Container") process.stdout.write(JSON.stringify({ provider: a.inputs.__provider }) + "\\n");
      return { id: "mock", state: a.inputs };
    },
    call: (a) => a.inputs,
  });
  const { Container } = require("pulumi-nixos-containers");
  new Container("c", { connection: { host: "192.0.2.1" }, name: "x", driver: "netns" });
}
main();
`;

/** Every installed copy of @pulumi/pulumi under a project's node_modules (pnpm's store included), by real path. */
function sdkCopies(project: string): string[] {
  const found = new Set<string>();
  const visit = (dir: string, depth: number) => {
    if (depth > 12) return;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      // Links are skipped: each points into a tree (pnpm's .pnpm store) this walk visits anyway.
      if (!entry.isDirectory()) continue;
      const full = path.join(dir, entry.name);
      if (
        entry.name === "pulumi" &&
        path.basename(dir) === "@pulumi" &&
        fs.existsSync(path.join(full, "package.json"))
      )
        found.add(fs.realpathSync(full));
      else visit(full, depth + 1);
    }
  };
  visit(path.join(project, "node_modules"), 0);
  return [...found];
}

beforeAll(() => {
  expect(fs.existsSync(path.join(REPO_ROOT, "bin/runtime/index.js")), "run `npm run build` first").toBe(true);
  // The package as published: the built bin/ (scripts off: the build above is what gets packed).
  const packed = JSON.parse(
    run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", work], REPO_ROOT),
  ) as { filename: string }[];
  tarball = path.join(work, packed[0].filename);
  // pnpm from the npm registry, into this test's own directory.
  const tools = path.join(work, "tools");
  run("npm", ["install", "--prefix", tools, "--no-audit", "--no-fund", "--no-save", "pnpm@10"], work);
  pnpm = path.join(tools, "node_modules", ".bin", "pnpm");
}, 300_000);

afterAll(async () => {
  await closeAll();
  fs.rmSync(work, { recursive: true, force: true });
});

const MANAGERS = {
  npm: {
    addSdk: ["install", "--no-audit", "--no-fund", `@pulumi/pulumi@${SDK_VERSION}`],
    addPackage: (file: string) => ["install", "--no-audit", "--no-fund", "--ignore-scripts", file],
  },
  pnpm: {
    addSdk: ["add", `@pulumi/pulumi@${SDK_VERSION}`],
    addPackage: (file: string) => ["add", "--ignore-scripts", file],
  },
} as const;

describe.each(Object.keys(MANAGERS) as (keyof typeof MANAGERS)[])(
  "the packed package installed with %s into a project that has the current SDK",
  (manager) => {
    const name = `pk-${manager.slice(0, 2)}`;
    const project = path.join(work, manager);
    const tool = () => (manager === "npm" ? "npm" : pnpm);

    beforeAll(() => {
      fs.mkdirSync(project);
      fs.writeFileSync(
        path.join(project, "package.json"),
        JSON.stringify(
          { name: `pnc-pack-${manager}`, version: "1.0.0", private: true, main: "program.js" },
          null,
          2,
        ),
      );
      fs.writeFileSync(path.join(project, "program.js"), PROGRAM);
      run(tool(), [...MANAGERS[manager].addSdk], project);
      run(tool(), MANAGERS[manager].addPackage(tarball), project);
    }, 300_000);

    it("holds exactly one @pulumi/pulumi, the project's, which the package resolves too", () => {
      const copies = sdkCopies(project);
      expect(copies).toHaveLength(1);
      const fromProject = createRequire(path.join(project, "program.js"));
      const installed = fs.realpathSync(path.join(project, "node_modules", "pulumi-nixos-containers"));
      const fromPackage = createRequire(path.join(installed, "bin", "index.js"));
      const sdkOf = (req: NodeRequire) =>
        fs.realpathSync(path.dirname(req.resolve("@pulumi/pulumi/package.json")));
      expect(sdkOf(fromProject)).toBe(copies[0]);
      expect(sdkOf(fromPackage)).toBe(copies[0]);
      expect(
        (JSON.parse(fs.readFileSync(path.join(copies[0], "package.json"), "utf8")) as { version: string })
          .version,
      ).toBe(SDK_VERSION);
      // No @pulumi/command either: the package declares its own ConnectionArgs type.
      expect(fs.existsSync(path.join(project, "node_modules", "@pulumi", "command"))).toBe(false);
    });

    it("installs with its runtime and resolves it from the project's own node_modules", () => {
      const installed = fs.realpathSync(path.join(project, "node_modules", "pulumi-nixos-containers"));
      expect(fs.existsSync(path.join(installed, "bin", "runtime", "index.js"))).toBe(true);
      expect(fs.existsSync(path.join(installed, "bin", "resources", "host.js"))).toBe(true);
      expect(fs.existsSync(path.join(installed, "provider"))).toBe(false);
      const resolved = createRequire(path.join(project, "program.js")).resolve(
        "pulumi-nixos-containers/runtime",
      );
      expect(fs.realpathSync(resolved)).toBe(path.join(installed, "bin", "runtime", "index.js"));
      expect(project.startsWith(REPO_ROOT)).toBe(false);
    });

    it("creates and deletes a Container on a lab host through a provider host started in the project", async () => {
      expect(Number(process.versions.node.split(".")[0])).toBeGreaterThanOrEqual(22);
      const out = run("node", ["program.js"], project, 60_000);
      const provider = (JSON.parse(out.trim().split("\n")[0]) as { provider: string }).provider;
      // The serialized provider is the project's: it names no file of this repository.
      expect(provider).toContain("pulumi-nixos-containers/runtime");
      expect(provider).not.toContain(REPO_ROOT);

      const host = await startProviderHost({ cwd: project });
      expect(fs.readlinkSync(`/proc/${host.pid}/cwd`)).toBe(project);
      const urn = urnFor("pulumi-nodejs:dynamic/nixos:Container", name);
      const news = {
        __provider: provider,
        connection: {
          host: h1.address,
          port: h1.port,
          user: h1.user,
          privateKey: fs.readFileSync(h1.privateKeyPath, "utf8"),
        },
        name,
        driver: "netns",
        hostAddress: manager === "npm" ? "10.233.199.1" : "10.233.198.1",
        localAddress: manager === "npm" ? "10.233.199.2" : "10.233.198.2",
      };
      const checked = await host.check(urn, {}, news);
      expect(checked.failures).toEqual([]);
      const inputs = revealMap(checked.inputs);
      const { id, outs } = await host.create(urn, inputs);
      try {
        expect(revealMap(outs)).toMatchObject({ hostInterface: `ve-${name}`, running: true });
        expect(labExec(h1, ["ping", "-c", "1", "-W", "2", news.localAddress]).code).toBe(0);
      } finally {
        await host.delete(urn, id, revealMap(outs), inputs);
      }
      expect(labExecOk(h1, ["ip", "netns", "list"])).not.toMatch(new RegExp(`^${name}\\b`, "m"));
      expect(labExec(h1, ["ip", "link", "show", `ve-${name}`]).code).not.toBe(0);
    });
  },
);

// Packaging: `npm pack` the built package, install the tarball into a fresh project outside the repository,
// serialize a Container's provider by running a program there (the project's own @pulumi/pulumi and installed
// package), and drive the real provider host started in that project against a lab host: the provider's
// runtime can only come from the project's own node_modules.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../harness/engine";
import { ProviderHost, closeAll, revealMap, startProviderHost, urnFor } from "../harness/providerHost";
import { labExec, labExecOk, labHost, readLab } from "../lab/labHosts";

const lab = readLab();
const h1 = labHost("h1", lab);
const NAME = "pk-a";
const project = fs.mkdtempSync(path.join(os.tmpdir(), "pnc-pack-project-"));
let host: ProviderHost | undefined;
let created: { id: string; outs: Record<string, unknown>; inputs: Record<string, unknown> } | undefined;

function run(cmd: string, args: string[], cwd: string, timeoutMs = 240_000): string {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}):\n${r.stderr}`);
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

beforeAll(() => {
  expect(fs.existsSync(path.join(REPO_ROOT, "bin/runtime/index.js")), "run `npm run build` first").toBe(true);
  // The package as published: the built bin/ (scripts off: the build above is what gets packed).
  const packed = JSON.parse(
    run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", project], REPO_ROOT),
  ) as { filename: string }[];
  const tarball = path.join(project, packed[0].filename);
  fs.writeFileSync(
    path.join(project, "package.json"),
    JSON.stringify({ name: "pnc-pack-check", version: "1.0.0", private: true, main: "program.js" }, null, 2),
  );
  fs.writeFileSync(path.join(project, "program.js"), PROGRAM);
  run(
    "npm",
    ["install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts", tarball],
    project,
  );
}, 300_000);

afterAll(async () => {
  if (host && created)
    await host
      .delete(urnFor("pulumi-nodejs:dynamic/nixos:Container", NAME), created.id, created.outs, created.inputs)
      .catch(() => undefined);
  await closeAll();
  fs.rmSync(project, { recursive: true, force: true });
});

describe("the packed package in a fresh project", () => {
  it("installs with its runtime and resolves it from the project's own node_modules", () => {
    const installed = path.join(project, "node_modules", "pulumi-nixos-containers");
    expect(fs.existsSync(path.join(installed, "bin", "runtime", "index.js"))).toBe(true);
    expect(fs.existsSync(path.join(installed, "bin", "resources", "host.js"))).toBe(true);
    expect(fs.existsSync(path.join(installed, "provider"))).toBe(false);
    const resolved = createRequire(path.join(project, "program.js")).resolve(
      "pulumi-nixos-containers/runtime",
    );
    expect(resolved).toBe(path.join(installed, "bin", "runtime", "index.js"));
    expect(project.startsWith(REPO_ROOT)).toBe(false);
  });

  it("creates and deletes a Container on a lab host through a provider host started in the project", async () => {
    const out = run("node", ["program.js"], project, 60_000);
    const provider = (JSON.parse(out.trim().split("\n")[0]) as { provider: string }).provider;
    // The serialized provider is the project's: it names no file of this repository.
    expect(provider).toContain("pulumi-nixos-containers/runtime");
    expect(provider).not.toContain(REPO_ROOT);

    host = await startProviderHost({ cwd: project });
    expect(fs.readlinkSync(`/proc/${host.pid}/cwd`)).toBe(project);
    const urn = urnFor("pulumi-nodejs:dynamic/nixos:Container", NAME);
    const news = {
      __provider: provider,
      connection: {
        host: h1.address,
        port: h1.port,
        user: h1.user,
        privateKey: fs.readFileSync(h1.privateKeyPath, "utf8"),
      },
      name: NAME,
      driver: "netns",
      hostAddress: "10.233.199.1",
      localAddress: "10.233.199.2",
    };
    const checked = await host.check(urn, {}, news);
    expect(checked.failures).toEqual([]);
    const inputs = revealMap(checked.inputs);
    const { id, outs } = await host.create(urn, inputs);
    created = { id, outs: revealMap(outs), inputs };
    expect(created.outs).toMatchObject({ hostInterface: `ve-${NAME}`, running: true });
    expect(labExec(h1, ["ping", "-c", "1", "-W", "2", "10.233.199.2"]).code).toBe(0);

    await host.delete(urn, id, created.outs, inputs);
    created = undefined;
    expect(labExecOk(h1, ["ip", "netns", "list"])).not.toMatch(new RegExp(`^${NAME}\\b`, "m"));
    expect(labExec(h1, ["ip", "link", "show", `ve-${NAME}`]).code).not.toBe(0);
  });
});

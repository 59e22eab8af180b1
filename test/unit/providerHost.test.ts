// Proves the provider-host harness against the REAL @pulumi/pulumi dynamic-provider process: every CRUD round
// trip, errors, secrets, run-time require() from the process cwd, concurrency, and start-up/round-trip cost.
/* eslint-disable @typescript-eslint/no-require-imports -- provider code runs in the host: it require()s at call time */
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  PROVIDER_KEY,
  ProviderHostError,
  UNKNOWN,
  closeAll,
  isSecret,
  liveHosts,
  secret,
  serializeProvider,
  startProviderHost,
  urnFor,
  withProvider,
  type ProviderHost,
} from "../harness/providerHost";

type Props = Record<string, unknown>;

// The tiny provider under test. Its methods run in the host process, so they may only use their arguments,
// globals and require(): everything else they capture is copied by value into `__provider`.
const tinyProvider = {
  async check(_olds: Props, news: Props) {
    const failures: { property: string; reason: string }[] = [];
    if (typeof news.size !== "number" || news.size < 1) {
      failures.push({ property: "size", reason: "size must be a positive number" });
    }
    if (news.explode === "check") throw new Error("check exploded: bad news");
    return { inputs: { ...news, normalized: true }, failures };
  },
  async diff(_id: string, olds: Props, news: Props) {
    if (news.explode === "diff") throw new Error("diff exploded");
    return {
      changes: olds.size !== news.size || olds.label !== news.label,
      replaces: olds.size !== news.size ? ["size"] : [],
      deleteBeforeReplace: olds.size !== news.size,
    };
  },
  async create(inputs: Props) {
    if (inputs.explode === "create") throw new Error("create exploded: host unreachable");
    if (inputs.explode === "partial") {
      const e = new Error("half made") as Error & { id: string; properties: Props; reasons: string[] };
      e.id = "half-1";
      e.properties = { size: inputs.size, stage: "veth" };
      e.reasons = ["nat rule failed", "route missing"];
      throw e;
    }
    const pw = inputs.password;
    return {
      id: `thing-${String(inputs.size)}`,
      outs: {
        size: inputs.size,
        label: inputs.label ?? "none",
        createdAt: 42,
        password: pw ?? null,
        passwordType: typeof pw,
        passwordPlain: pw === "hunter2",
        // Deliberate leak: a secret copied into another key is NOT re-marked secret by the engine.
        summary: pw === undefined ? "no password" : `pw=${String(pw)}`,
      },
    };
  },
  async read(id: string, props: Props) {
    if (id === "gone") return { id: "" };
    if (id === "explode") throw new Error("read exploded");
    return { id, props: { ...props, refreshed: true }, inputs: { size: props.size } };
  },
  async update(_id: string, olds: Props, news: Props) {
    if (news.explode === "update") throw new Error("update exploded");
    return { outs: { ...olds, ...news, updated: true } };
  },
  async delete(id: string, olds: Props) {
    if (id === "stuck") throw new Error(`delete of ${id} failed: device busy`);
    if (typeof olds.marker === "string") require("node:fs").writeFileSync(olds.marker, `deleted ${id}`);
  },
};

const TYPE = "pulumi-nodejs:dynamic/test:Thing";
const urn = (name: string) => urnFor(TYPE, name);

let host: ProviderHost;
let text: string;

beforeAll(async () => {
  text = await serializeProvider(tinyProvider);
  host = await startProviderHost();
});
afterAll(closeAll);

async function expectProviderError(p: Promise<unknown>, message: string): Promise<ProviderHostError> {
  const e: unknown = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ProviderHostError);
  const err = e as ProviderHostError;
  expect(err.message).toContain(message);
  return err;
}

describe("round trips through the real dynamic-provider host", () => {
  test("check: failures come back as failures; inputs come back with __provider", async () => {
    const bad = await host.check(urn("a"), {}, withProvider(text, { size: 0 }));
    expect(bad.failures).toEqual([{ property: "size", reason: "size must be a positive number" }]);

    const good = await host.check(urn("a"), {}, withProvider(text, { size: 2, label: undefined }));
    expect(good.failures).toEqual([]);
    expect(good.inputs).toEqual({ size: 2, normalized: true, [PROVIDER_KEY]: text });
  });

  test("check: unknown values reach the provider as the sentinel string", async () => {
    const r = await host.check(urn("a"), {}, withProvider(text, { size: 3, label: UNKNOWN }));
    expect(r.inputs.label).toBe(UNKNOWN);
  });

  test("check: an unknown __provider (provider itself computed) falls back to the olds' provider", async () => {
    const r = await host.check(urn("a"), withProvider(text, { size: 1 }), {
      size: 4,
      [PROVIDER_KEY]: UNKNOWN,
    });
    expect(r.failures).toEqual([]);
    expect(r.inputs).toEqual({ size: 4, normalized: true, [PROVIDER_KEY]: UNKNOWN });
  });

  test("diff: changes, replaces and deleteBeforeReplace", async () => {
    const olds = withProvider(text, { size: 1, label: "x" });
    expect(await host.diff(urn("a"), "thing-1", olds, withProvider(text, { size: 1, label: "x" }))).toEqual({
      changes: false,
      kind: "none",
      replaces: [],
      deleteBeforeReplace: false,
    });
    expect(
      await host.diff(urn("a"), "thing-1", olds, withProvider(text, { size: 1, label: "y" })),
    ).toMatchObject({
      changes: true,
      kind: "some",
      replaces: [],
    });
    expect(await host.diff(urn("a"), "thing-1", olds, withProvider(text, { size: 2, label: "x" }))).toEqual({
      changes: true,
      kind: "some",
      replaces: ["size"],
      deleteBeforeReplace: true,
    });
  });

  test("diff: a provider without diff answers DIFF_UNKNOWN (the engine then diffs inputs itself)", async () => {
    const noDiff = await serializeProvider({ create: async () => ({ id: "x", outs: {} }) });
    const r = await host.diff(urn("b"), "x", withProvider(noDiff, { a: 1 }), withProvider(noDiff, { a: 2 }));
    expect(r.kind).toBe("unknown");
    expect(r.changes).toBe(false);
  });

  test("create returns id and outs, with __provider added", async () => {
    const r = await host.create(urn("a"), withProvider(text, { size: 5, normalized: true }));
    expect(r.id).toBe("thing-5");
    expect(r.outs).toMatchObject({ size: 5, label: "none", createdAt: 42, [PROVIDER_KEY]: text });
  });

  test("update returns outs", async () => {
    const olds = withProvider(text, { size: 5, label: "none", createdAt: 42 });
    const r = await host.update(urn("a"), "thing-5", olds, withProvider(text, { size: 5, label: "new" }));
    expect(r.outs).toEqual({ size: 5, label: "new", createdAt: 42, updated: true, [PROVIDER_KEY]: text });
  });

  test("read returns id, props and inputs; an empty id means gone", async () => {
    const r = await host.read(urn("a"), "thing-5", withProvider(text, { size: 5, createdAt: 42 }));
    expect(r.id).toBe("thing-5");
    expect(r.props).toEqual({ size: 5, createdAt: 42, refreshed: true, [PROVIDER_KEY]: text });
    expect(r.inputs).toEqual({ size: 5, [PROVIDER_KEY]: text });

    const gone = await host.read(urn("a"), "gone", withProvider(text, { size: 5 }));
    expect(gone.id).toBe("");
  });

  test("delete runs the provider's delete with the old outputs", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "ph-del-"));
    const marker = path.join(dir, "deleted");
    try {
      await host.delete(urn("a"), "thing-5", withProvider(text, { size: 5, marker }));
      expect(readFileSync(marker, "utf8")).toBe("deleted thing-5");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("errors", () => {
  test("a thrown error's message surfaces from every method", async () => {
    const bad = (explode: string) => withProvider(text, { size: 1, explode });
    await expectProviderError(host.check(urn("e"), {}, bad("check")), "check exploded: bad news");
    await expectProviderError(host.diff(urn("e"), "i", bad(""), bad("diff")), "diff exploded");
    const c = await expectProviderError(
      host.create(urn("e"), bad("create")),
      "create exploded: host unreachable",
    );
    expect(c.method).toBe("create");
    expect(c.initFailure).toBeUndefined();
    await expectProviderError(host.update(urn("e"), "i", bad(""), bad("update")), "update exploded");
    await expectProviderError(host.read(urn("e"), "explode", bad("")), "read exploded");
    await expectProviderError(host.delete(urn("e"), "stuck", bad("")), "delete of stuck failed: device busy");
  });

  test("create's partial failure carries id, properties and reasons (ErrorResourceInitFailed)", async () => {
    const e = await expectProviderError(
      host.create(urn("p"), withProvider(text, { size: 7, explode: "partial" })),
      "half made",
    );
    expect(e.initFailure).toEqual({
      id: "half-1",
      properties: { size: 7, stage: "veth" },
      reasons: ["nat rule failed", "route missing"],
    });
  });

  test("gotcha: an output set to undefined fails the whole call with 'Unexpected struct type.'", async () => {
    const p = await serializeProvider({
      create: async () => ({ id: "u", outs: { ok: 1, missing: undefined } }),
    });
    await expectProviderError(host.create(urn("u"), withProvider(p, {})), "Unexpected struct type");
  });

  test("gotcha: a missing __provider is a host error, not a provider error", async () => {
    // require-from-string's own message: the host fails before any provider code runs.
    await expectProviderError(host.create(urn("m"), { size: 1 }), "code must be a string, not undefined");
  });
});

describe("secrets", () => {
  test("a secret input arrives in plaintext; only the same key comes back secret", async () => {
    const r = await host.create(urn("s"), withProvider(text, { size: 1, password: secret("hunter2") }));
    expect(r.outs.passwordPlain).toBe(true);
    expect(r.outs.passwordType).toBe("string");
    expect(isSecret(r.outs.password)).toBe(true);
    expect(r.outs.password).toEqual(secret("hunter2"));
    // The engine would store this in plaintext: exactly what tests of this package must catch.
    expect(r.outs.summary).toBe("pw=hunter2");
  });

  test("no secret in logs unless the provider prints it; pulumi.log can be routed to the fake engine", async () => {
    const quiet = await serializeProvider({
      async create(inputs: Props) {
        console.log(`creating with ${Object.keys(inputs).length} inputs`);
        require("@pulumi/pulumi").log.info(`size is ${String(inputs.size)}`);
        return { id: "q", outs: {} };
      },
    });
    const loud = await serializeProvider({
      async create(inputs: Props) {
        console.error(`debug: password=${String(inputs.password)}`);
        return { id: "l", outs: {} };
      },
    });
    const h = await startProviderHost({ routeLogsToEngine: true });
    await h.create(urn("q"), withProvider(quiet, { size: 9, password: secret("s3cr3t-q") }));
    await h.create(urn("l"), withProvider(loud, { size: 9, password: secret("s3cr3t-l") }));
    await h.close(); // output is complete once the process has exited
    const logs = h.logs();
    expect(logs).toContain("[stdout] creating with 3 inputs");
    expect(h.engineLogs()).toContainEqual({ severity: "info", message: "size is 9", urn: "" });
    expect(logs.join("\n")).not.toContain("s3cr3t-q");
    expect(logs.join("\n")).toContain("s3cr3t-l");
  });

  test("without routeLogsToEngine (as under the CLI) pulumi.log prints to stdout", async () => {
    const p = await serializeProvider({
      async create() {
        require("@pulumi/pulumi").log.info("hello from provider");
        return { id: "x", outs: {} };
      },
    });
    const h = await startProviderHost();
    await h.create(urn("x"), withProvider(p, {}));
    await h.close();
    expect(h.logs()).toContain("[stdout] info: [runtime] hello from provider");
    expect(h.engineLogs()).toEqual([]);
  });

  test("Configure delivers stack config, secrets unwrapped, to provider.configure", async () => {
    // Captured objects are copied into __provider once; the host deserializes once per text, so the copy is
    // shared by configure and every later call.
    const seen = { greeting: "" };
    const p = await serializeProvider({
      async configure(req: { config: { get(key: string): string | undefined } }) {
        seen.greeting = req.config.get("test:greeting") ?? "";
      },
      async create() {
        return { id: "c", outs: { greeting: seen.greeting } };
      },
    });
    const h = await startProviderHost({ config: { "test:greeting": secret("hi there") } });
    expect(h.acceptsSecrets).toBe(false);
    const r = await h.create(urn("c"), withProvider(p, {}));
    expect(r.outs.greeting).toBe("hi there");
    await h.close();
  });
});

describe("run-time require() resolves from the host's cwd", () => {
  let project: string;
  beforeAll(() => {
    // A fake project dir with a fake runtime module, like a user project with this package installed.
    project = mkdtempSync(path.join(tmpdir(), "ph-proj-"));
    const mod = path.join(project, "node_modules", "fake-runtime");
    mkdirSync(mod, { recursive: true });
    writeFileSync(path.join(mod, "package.json"), JSON.stringify({ name: "fake-runtime", main: "index.js" }));
    writeFileSync(
      path.join(mod, "index.js"),
      [
        "let calls = 0;",
        "exports.create = async (kind, inputs) => {",
        "  calls += 1;",
        "  return { id: kind + '-' + calls, outs: { kind, calls, size: inputs.size, cwd: process.cwd() } };",
        "};",
      ].join("\n"),
    );
  });
  afterAll(() => rmSync(project, { recursive: true, force: true }));

  test("a shim provider works when cwd is the project dir, and module state is shared by all types", async () => {
    const shimA = await serializeProvider({ create: (i: Props) => require("fake-runtime").create("A", i) });
    const shimB = await serializeProvider({ create: (i: Props) => require("fake-runtime").create("B", i) });
    expect(shimA.length).toBeLessThan(1000);
    const h = await startProviderHost({ cwd: project });
    const a = await h.create(urn("a"), withProvider(shimA, { size: 1 }));
    const b = await h.create(urn("b"), withProvider(shimB, { size: 2 }));
    expect(a).toMatchObject({ id: "A-1", outs: { kind: "A", calls: 1, size: 1, cwd: project } });
    expect(b).toMatchObject({ id: "B-2", outs: { kind: "B", calls: 2 } });
    await h.close();
  });

  test("the same shim fails with the resolver's message when cwd lacks the module", async () => {
    const shim = await serializeProvider({ create: (i: Props) => require("fake-runtime").create("A", i) });
    await expectProviderError(
      host.create(urn("a"), withProvider(shim, { size: 1 })),
      "Cannot find module 'fake-runtime'",
    );
  });
});

describe("process and performance", () => {
  test("16 concurrent creates in one process overlap", async () => {
    const state = { active: 0, max: 0 };
    const slow = await serializeProvider({
      async create(inputs: Props) {
        state.active += 1;
        state.max = Math.max(state.max, state.active);
        await new Promise((r) => setTimeout(r, 300));
        const maxSeen = state.max;
        state.active -= 1;
        return { id: `c-${String(inputs.n)}`, outs: { n: inputs.n, maxSeen } };
      },
    });
    const t0 = performance.now();
    const results = await Promise.all(
      Array.from({ length: 16 }, (_, n) => host.create(urn(`c${n}`), withProvider(slow, { n }))),
    );
    const wall = performance.now() - t0;
    expect(results.map((r) => r.id)).toEqual(Array.from({ length: 16 }, (_, n) => `c-${n}`));
    expect(Math.max(...results.map((r) => Number(r.outs.maxSeen)))).toBe(16);
    expect(wall).toBeLessThan(16 * 300 * 0.5);
    console.log(`16 concurrent 300 ms creates: ${wall.toFixed(0)} ms wall`);
  });

  test("measure: start time, trivial create round trip, RSS", async () => {
    const trivial = await serializeProvider({ create: async () => ({ id: "t", outs: { ok: true } }) });
    const starts: string[] = [];
    const closes: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const h = await startProviderHost();
      starts.push(`${h.startupMs.toFixed(0)}/${(performance.now() - t0).toFixed(0)}`);
      const t1 = performance.now();
      await h.close();
      closes.push(performance.now() - t1);
    }
    const h = await startProviderHost();
    const idleRss = h.rssKiB();
    const t1 = performance.now();
    await h.create(urn("t"), withProvider(trivial, {}));
    const first = performance.now() - t1;
    const n = 200;
    const t2 = performance.now();
    for (let i = 0; i < n; i++) await h.create(urn("t"), withProvider(trivial, {}));
    const perCall = (performance.now() - t2) / n;
    const rss = h.rssKiB();
    await h.close();
    console.log(
      `provider host start (spawn→port / +fake engine+Configure): ${starts.join(", ")} ms; ` +
        `close: ${closes.map((c) => c.toFixed(0)).join(", ")} ms; idle RSS ${(idleRss / 1024).toFixed(1)} MiB; ` +
        `first create (deserialize): ${first.toFixed(1)} ms; trivial create round trip: ${perCall.toFixed(2)} ms; ` +
        `RSS after ${n + 1} creates: ${(rss / 1024).toFixed(1)} MiB`,
    );
    expect(perCall).toBeLessThan(50);
  });

  test("close() kills the process; closeAll() leaves nothing running", async () => {
    const h = await startProviderHost();
    const pid = h.pid;
    expect(() => process.kill(pid, 0)).not.toThrow();
    await h.close();
    expect(() => process.kill(pid, 0)).toThrow();
    expect(h.exitStatus()).toBeDefined();

    const h2 = await startProviderHost();
    const pid2 = h2.pid;
    await closeAll();
    expect(() => process.kill(pid2, 0)).toThrow();
    expect(liveHosts()).toBe(0);
    expect(existsSync(`/proc/${pid2}`)).toBe(false);
    // Re-open the shared host for any later test in this file.
    host = await startProviderHost();
  });
});

// `pulumi refresh` then `pulumi preview --diff`: read hands back the inputs `check` produced (dynamic providers
// may since @pulumi/pulumi 3.216), so after a refresh that found nothing changed the next preview changes
// nothing, for every resource type; and a refresh that found drift still shows it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connection, h1, h2 } from "./fixture";
import { MiniEngine, ResourceType, StateEntry } from "../harness/engine";
import { PROVIDER_KEY, closeAll } from "../harness/providerHost";
import { labExecOk } from "../lab/labHosts";

let engine: MiniEngine;
const made: StateEntry[] = [];
beforeAll(async () => {
  engine = await MiniEngine.start();
});
afterAll(async () => {
  for (const entry of made.reverse()) await engine.destroy(entry).catch(() => undefined);
  await closeAll();
});

/** Creates, refreshes, and returns what the next preview of the same program decides. */
async function refreshThenPlan(type: ResourceType, name: string, news: Record<string, unknown>) {
  const entry = await engine.create(type, name, news);
  made.push(entry);
  const checkedAtCreate = entry.inputs;
  // As `pulumi refresh` does: the provider must hand the inputs back, not leave the engine to keep old ones.
  const read = await engine.host.read(entry.urn, entry.id, entry.outs, entry.inputs);
  expect(read.returnedInputs).toBe(true);
  expect(await engine.refresh(entry)).toBe(true);
  return { entry, checkedAtCreate, plan: await engine.plan(entry, news) };
}

describe("refresh, then preview --diff of the same program", () => {
  const cases: [ResourceType, string, Record<string, unknown>][] = [
    ["AddressPool", "rf-pool", { members: ["a", "b"] }],
    [
      "Container",
      "rf-c",
      {
        connection: connection(h1),
        name: "rf-c",
        driver: "netns",
        hostAddress: "10.233.61.1",
        localAddress: "10.233.61.2",
      },
    ],
    // Addresses the host picked are outputs, not inputs: they must not come back as inputs.
    ["Container", "rf-auto", { connection: connection(h1), name: "rf-auto", driver: "netns" }],
    [
      "VethPair",
      "rf-v",
      {
        connection: connection(h1),
        container: "rf-c",
        hostInterface: "rf-vh",
        containerInterface: "rf-vc",
        hostAddress: "10.233.62.1",
        localAddress: "10.233.62.2",
      },
    ],
    ["NatRule", "rf-nat", { connection: connection(h1), name: "rf-nat", externalInterface: "eth0" }],
    ["NmUnmanaged", "rf-nm", { connection: connection(h2), name: "rf-nm" }],
  ];

  for (const [type, name, news] of cases) {
    it(`changes nothing for ${type} ${name}`, async () => {
      const { entry, checkedAtCreate, plan } = await refreshThenPlan(type, name, news);
      const { [PROVIDER_KEY]: _kept, ...inputs } = entry.inputs;
      const { [PROVIDER_KEY]: _checked, ...atCreate } = checkedAtCreate;
      expect(inputs).toEqual(atCreate);
      expect(plan.inputs).toEqual(checkedAtCreate);
      expect(plan.diff).toMatchObject({ changes: false, replaces: [] });
    });
  }

  it("still shows drift a refresh found: an address removed by hand is an update", async () => {
    const container = made.find((e) => e.name === "rf-c");
    if (!container) throw new Error("the Container case did not run");
    labExecOk(h1, ["ip", "addr", "del", "10.233.61.1/32", "dev", "ve-rf-c"]);
    expect(await engine.refresh(container)).toBe(true);
    expect(container.outs.running).toBe(false);
    const { diff } = await engine.plan(container, cases[1][2]);
    expect(diff).toMatchObject({ changes: true, replaces: [] });
    expect(await engine.up(container, cases[1][2])).toBe("updated");
    expect(container.outs.running).toBe(true);
  });
});

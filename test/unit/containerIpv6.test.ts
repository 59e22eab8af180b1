// Container IPv6 (hostAddress6 / localAddress6): strict parsing into canonical text, the pairing rules of a
// routed and a bridged container, and how a driver's report becomes `running` and the v6 outputs.
import { describe, expect, it } from "vitest";
import { parseContainerInputs } from "../../provider/core/containerSpec";
import { observeContainer } from "../../provider/host/containerScripts";

const BASE = { name: "web", driver: "netns", hostAddress: "10.233.1.1", localAddress: "10.233.1.2" };

function messages(raw: Record<string, unknown>): string[] {
  const { spec, failures } = parseContainerInputs(raw);
  expect(spec).toBeUndefined();
  return failures.map((f) => `${f.property}: ${f.message}`);
}

describe("Container IPv6 inputs", () => {
  it("keeps both addresses in canonical text (as ip -6 prints them)", () => {
    const { spec, failures } = parseContainerInputs({
      ...BASE,
      hostAddress6: "FD00:0233:0001:0000::1",
      localAddress6: "fd00:233:1::2",
    });
    expect(failures).toEqual([]);
    expect(spec).toMatchObject({ hostAddress6: "fd00:233:1::1", localAddress6: "fd00:233:1::2" });
  });

  it("needs both or neither, two different addresses, and addresses an interface can carry", () => {
    expect(messages({ ...BASE, hostAddress6: "fd00::1" }).join("\n")).toContain("localAddress6");
    expect(messages({ ...BASE, hostAddress6: "fd00::1", localAddress6: "fd00:0::1" })).toContain(
      'localAddress6: localAddress6 "fd00:0::1" equals hostAddress6: the two ends of the veth need different addresses',
    );
    expect(messages({ ...BASE, hostAddress6: "fe80::1", localAddress6: "fd00::2" })[0]).toMatch(
      /^hostAddress6: hostAddress6 "fe80::1" cannot be given to an interface: it is link-local/,
    );
    expect(messages({ ...BASE, hostAddress6: "fd00::1%eth0", localAddress6: "fd00::2" })[0]).toMatch(
      /^hostAddress6: hostAddress6 "fd00::1%eth0" is not a valid IPv6 address/,
    );
    expect(messages({ ...BASE, hostAddress6: "fd00::1/64", localAddress6: "fd00::2" })[0]).toMatch(
      /^hostAddress6: hostAddress6 "fd00::1\/64" is not a valid IPv6 address/,
    );
  });

  it("takes a bridged container's localAddress6 with a prefix, and its hostAddress6 as the gateway", () => {
    const bridged = { name: "lan", driver: "netns", hostBridge: "br0" };
    const { spec, failures } = parseContainerInputs({
      ...bridged,
      localAddress6: "2001:DB8:50::5/64",
      hostAddress6: "2001:db8:50::1",
    });
    expect(failures).toEqual([]);
    expect(spec).toMatchObject({ localAddress6: "2001:db8:50::5/64", hostAddress6: "2001:db8:50::1" });
    expect(messages({ ...bridged, hostAddress6: "2001:db8:50::1" }).join("\n")).toContain(
      "localAddress6 is missing while hostAddress6 is set with hostBridge",
    );
    expect(messages({ ...bridged, localAddress6: "2001:db8:50::5/129" }).join("\n")).toContain(
      "optionally with a prefix length 1-128",
    );
  });
});

describe("Container IPv6 as found on the host", () => {
  const live = {
    namespace: "1",
    hostLink: "1",
    liveHostAddress: "10.233.1.1",
    liveLocalAddress: "10.233.1.2",
    liveHostAddress6: "fd00:233:1::1",
    liveLocalAddress6: "fd00:233:1::2",
  };
  const want = { ...BASE, hostAddress6: "fd00:233:1::1", localAddress6: "fd00:233:1::2" } as const;

  it("is running with both families as wanted, and reports the v6 ends", () => {
    expect(observeContainer("netns", live, want)).toMatchObject({
      running: true,
      hostAddress6: "fd00:233:1::1",
      localAddress6: "fd00:233:1::2",
    });
  });

  it("is not running when an IPv6 end is missing or another (a drift the next up repairs), nor an IPv4 one", () => {
    expect(observeContainer("netns", { ...live, liveLocalAddress6: "" }, want).running).toBe(false);
    expect(observeContainer("netns", { ...live, liveHostAddress6: "fd00:233:1::9" }, want).running).toBe(
      false,
    );
    expect(observeContainer("netns", { ...live, liveHostAddress: "10.233.7.1" }, want).running).toBe(false);
    // Without IPv6 wanted, an address found there is reported but does not matter.
    expect(observeContainer("netns", live, BASE).running).toBe(true);
  });

  it("reads a nixos container's IPv6 from its conf and compares the live ends", () => {
    const nixos = {
      ...live,
      conf: "/etc/nixos-containers/web.conf",
      confHostAddress: "10.233.1.1",
      confLocalAddress: "10.233.1.2",
      confHostAddress6: "fd00:233:1::1",
      confLocalAddress6: "fd00:233:1::2",
      unitState: "active",
    };
    expect(observeContainer("nixos", nixos)).toMatchObject({ running: true, localAddress6: "fd00:233:1::2" });
    expect(observeContainer("nixos", { ...nixos, liveLocalAddress6: "" }).running).toBe(false);
  });
});

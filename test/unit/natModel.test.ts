// NatRule inputs: NixOS option names parsed once into the typed model both renderers use.
import { describe, expect, it } from "vitest";
import { HOSTILE } from "../fixtures/hostile";
import { MAX_SHIFTED_PORTS, NatSpec, dnatRules, parseNatInputs } from "../../provider/core/natRuleSpec";
import { Failure, UNKNOWN } from "../../provider/core/validate";

const BASE = { name: "web", externalInterface: "eth0" };

function parsed(raw: Record<string, unknown>): NatSpec {
  const { spec, failures } = parseNatInputs(raw);
  expect(failures).toEqual([]);
  if (spec === undefined) {
    throw new Error("expected a spec");
  }
  return spec;
}

function failuresOf(raw: Record<string, unknown>): Failure[] {
  const { spec, failures } = parseNatInputs(raw);
  expect(spec).toBeUndefined();
  expect(failures.length).toBeGreaterThan(0);
  return failures;
}

describe("parseNatInputs", () => {
  it("applies the NixOS defaults: nftables, ve-+ as a typed wildcard, no ranges, no forwards", () => {
    expect(parsed(BASE)).toEqual({
      name: "web",
      backend: "nftables",
      internalInterfaces: [{ name: "ve-", wildcard: true }],
      internalIPs: [],
      externalInterface: "eth0",
      forwardPorts: [],
      allowForward: false,
      loopbackIPs: [],
    });
  });

  it("takes allowForward and loopbackIPs, and names the property and value of a bad one", () => {
    const spec = parsed({
      ...BASE,
      allowForward: true,
      loopbackIPs: ["192.0.2.10", "127.0.0.1", "192.0.2.10"],
    });
    expect(spec).toMatchObject({ allowForward: true, loopbackIPs: ["192.0.2.10", "127.0.0.1"] });
    expect(failuresOf({ ...BASE, allowForward: "yes" })).toEqual([
      { property: "allowForward", message: 'allowForward must be true or false, got "yes"' },
    ]);
    expect(failuresOf({ ...BASE, loopbackIPs: ["192.0.2.300"] })[0]).toMatchObject({
      property: "loopbackIPs[0]",
      message: expect.stringContaining('"192.0.2.300" is not a valid IPv4 address'),
    });
  });

  it("normalises ve-+ and ve-* to the same wildcard and drops duplicates", () => {
    const spec = parsed({ ...BASE, internalInterfaces: ["ve-+", "br0", "ve-*", "br0"] });
    expect(spec.internalInterfaces).toEqual([
      { name: "ve-", wildcard: true },
      { name: "br0", wildcard: false },
    ]);
  });

  it("keeps internal ranges and addresses, externalIP and the iptables backend", () => {
    const spec = parsed({
      ...BASE,
      backend: "iptables",
      internalIPs: ["10.233.0.0/16", "192.168.7.9", "10.233.0.0/16"],
      externalIP: "203.0.113.5",
    });
    expect(spec.backend).toBe("iptables");
    expect(spec.internalIPs).toEqual(["10.233.0.0/16", "192.168.7.9"]);
    expect(spec.externalIP).toBe("203.0.113.5");
  });

  it("parses every sourcePort and destination form, defaulting proto to tcp", () => {
    const spec = parsed({
      ...BASE,
      forwardPorts: [
        { sourcePort: 8080, destination: "10.233.1.2:80" },
        { sourcePort: "8000:8010", destination: "10.233.1.2:8000-8010", proto: "udp" },
        { sourcePort: "9000-9002", destination: "10.233.1.3" },
        { sourcePort: "5353", destination: "10.233.1.4:53" },
      ],
    });
    expect(spec.forwardPorts).toEqual([
      {
        proto: "tcp",
        sourcePort: { from: 8080, to: 8080 },
        destination: { address: "10.233.1.2", port: { from: 80, to: 80 } },
      },
      {
        proto: "udp",
        sourcePort: { from: 8000, to: 8010 },
        destination: { address: "10.233.1.2", port: { from: 8000, to: 8010 } },
      },
      { proto: "tcp", sourcePort: { from: 9000, to: 9002 }, destination: { address: "10.233.1.3" } },
      {
        proto: "tcp",
        sourcePort: { from: 5353, to: 5353 },
        destination: { address: "10.233.1.4", port: { from: 53, to: 53 } },
      },
    ]);
  });

  it("allows the same port for tcp and udp", () => {
    const spec = parsed({
      ...BASE,
      forwardPorts: [
        { sourcePort: 53, destination: "10.233.1.2", proto: "tcp" },
        { sourcePort: 53, destination: "10.233.1.2", proto: "udp" },
      ],
    });
    expect(spec.forwardPorts).toHaveLength(2);
  });

  it("accepts the unknown sentinel anywhere, with no spec and no failures", () => {
    for (const raw of [
      { ...BASE, name: UNKNOWN },
      { ...BASE, externalInterface: UNKNOWN },
      { ...BASE, internalInterfaces: UNKNOWN },
      { ...BASE, internalInterfaces: ["ve-+", UNKNOWN] },
      { ...BASE, externalIP: UNKNOWN },
      { ...BASE, backend: UNKNOWN },
      { ...BASE, forwardPorts: [UNKNOWN] },
      { ...BASE, forwardPorts: [{ sourcePort: UNKNOWN, destination: "10.233.1.2" }] },
      { ...BASE, forwardPorts: [{ sourcePort: 80, destination: UNKNOWN }] },
    ]) {
      expect(parseNatInputs(raw)).toEqual({ failures: [] });
    }
  });

  it("still reports the known offenders when another input is unknown", () => {
    const { spec, failures } = parseNatInputs({ ...BASE, name: UNKNOWN, externalIP: "10.1" });
    expect(spec).toBeUndefined();
    expect(failures.map((f) => f.property)).toEqual(["externalIP"]);
  });
});

describe("parseNatInputs rejections", () => {
  it("rejects a missing name and externalInterface", () => {
    const failures = failuresOf({});
    expect(failures.map((f) => f.property)).toEqual(["name", "externalInterface"]);
    expect(failures[1].message).toBe("externalInterface is required");
  });

  it("rejects a name too long for iptables chain names, saying why", () => {
    const [failure] = failuresOf({ ...BASE, name: "a-very-long-name" });
    expect(failure.property).toBe("name");
    expect(failure.message).toContain('name "a-very-long-name" is not a valid id: use 1-15 characters');
    expect(failure.message).toContain("28 characters in a chain name");
  });

  it("accepts the longest name whose chains fit in 28 characters", () => {
    expect(parsed({ ...BASE, name: "abcdefghijklmno" }).name).toBe("abcdefghijklmno");
  });

  it("rejects an unknown backend naming the allowed ones", () => {
    const [failure] = failuresOf({ ...BASE, backend: "pf" });
    expect(failure.message).toBe('backend "pf" is not allowed: use one of "nftables", "iptables"');
  });

  it("rejects every bad list item, each under its own index", () => {
    const failures = failuresOf({
      ...BASE,
      internalInterfaces: ["ve-+", "+", "eth0 ", "x".repeat(16)],
      internalIPs: ["10.233.0.0/16", "10.233.1.5/16", "10.1"],
    });
    expect(failures.map((f) => f.property)).toEqual([
      "internalInterfaces[1]",
      "internalInterfaces[2]",
      "internalInterfaces[3]",
      "internalIPs[1]",
      "internalIPs[2]",
    ]);
    expect(failures[3].message).toContain('use "10.233.0.0/16"');
  });

  it("rejects a wildcard on the external interface", () => {
    const [failure] = failuresOf({ ...BASE, externalInterface: "eth+" });
    expect(failure.property).toBe("externalInterface");
  });

  it("rejects an internal interface that also matches the external one", () => {
    const failures = failuresOf({
      ...BASE,
      externalInterface: "eth0",
      internalInterfaces: ["eth+", "eth0", "ve-+"],
    });
    expect(failures.map((f) => f.property)).toEqual(["internalInterfaces[0]", "internalInterfaces[1]"]);
    expect(failures[0].message).toContain('internalInterfaces[0] "eth+" matches externalInterface "eth0"');
  });

  it("rejects a bad externalIP", () => {
    const [failure] = failuresOf({ ...BASE, externalIP: "203.0.113.05" });
    expect(failure.message).toMatch(/^externalIP "203\.0\.113\.05" is not a valid IPv4 address/);
  });

  it("rejects forwardPorts that is not a list, and items that are not objects", () => {
    expect(failuresOf({ ...BASE, forwardPorts: "8080" })[0].message).toBe(
      'forwardPorts must be a list, got "8080"',
    );
    expect(failuresOf({ ...BASE, forwardPorts: [8080] })[0].message).toBe(
      "forwardPorts[0] must be an object { sourcePort, destination, proto? }, got number 8080",
    );
  });

  it("rejects unknown forward properties such as NixOS's loopbackIPs", () => {
    const [failure] = failuresOf({
      ...BASE,
      forwardPorts: [{ sourcePort: 80, destination: "10.233.1.2", loopbackIPs: ["1.2.3.4"] }],
    });
    expect(failure).toEqual({
      property: "forwardPorts[0].loopbackIPs",
      message:
        'forwardPorts[0] has an unknown property "loopbackIPs": use only sourcePort, destination and proto',
    });
  });

  it("rejects bad ports, destinations and protocols, listing every offender", () => {
    const failures = failuresOf({
      ...BASE,
      forwardPorts: [
        { sourcePort: 80, destination: "10.233.1.2:80" },
        { sourcePort: 0, destination: "10.233.1.2" },
        { sourcePort: "8010:8000", destination: "10.233.1.2" },
        { sourcePort: 81, destination: "10.233.1.2:0" },
        { sourcePort: 82, destination: "10.233.1.2:80:81" },
        { sourcePort: 83, destination: "host.example:80" },
        { sourcePort: 84 },
        { sourcePort: 85, destination: "10.233.1.2", proto: "sctp" },
      ],
    });
    expect(failures.map((f) => f.property)).toEqual([
      "forwardPorts[1].sourcePort",
      "forwardPorts[2].sourcePort",
      "forwardPorts[3].destination",
      "forwardPorts[4].destination",
      "forwardPorts[5].destination",
      "forwardPorts[6].destination",
      "forwardPorts[7].proto",
    ]);
    expect(failures[4].message).toBe(
      'forwardPorts[5].destination "host.example:80" is not a valid destination: use "ADDRESS", "ADDRESS:PORT" or ' +
        '"ADDRESS:LOW-HIGH" with a dotted-quad IPv4 address and ports 1-65535, LOW ≤ HIGH, e.g. "10.233.1.2:80"; ' +
        'an IPv6 address goes in brackets (with ipv6: "nat66"): "[fd00::2]", "[fd00::2]:80" or "[fd00::2]:8000-8010"',
    );
    expect(failures[6].message).toBe('forwardPorts[7].proto "sctp" is not allowed: use one of "tcp", "udp"');
  });

  it("rejects port ranges of different lengths", () => {
    const [failure] = failuresOf({
      ...BASE,
      forwardPorts: [{ sourcePort: "8000:8010", destination: "10.233.1.2:80-85" }],
    });
    expect(failure).toEqual({
      property: "forwardPorts[0].destination",
      message:
        'forwardPorts[0].destination "10.233.1.2:80-85" has 6 ports but forwardPorts[0].sourcePort "8000:8010" has 11: ' +
        "use port ranges of the same length, or forward to one port",
    });
  });

  it("rejects a destination range behind a single source port", () => {
    const [failure] = failuresOf({
      ...BASE,
      forwardPorts: [{ sourcePort: 8080, destination: "10.233.1.2:80-81" }],
    });
    expect(failure.message).toContain('give sourcePort a range of the same length (e.g. "8080-8081")');
  });

  it("rejects a shifted range too long to expand port by port", () => {
    const high = 1000 + MAX_SHIFTED_PORTS;
    const [failure] = failuresOf({
      ...BASE,
      forwardPorts: [{ sourcePort: `1000-${high}`, destination: `10.233.1.2:2000-${high + 1000}` }],
    });
    expect(failure.message).toContain(`use the same range on both sides (e.g. "10.233.1.2:1000-${high}")`);
  });

  it("rejects overlapping source ports of the same protocol, naming both forwards", () => {
    const failures = failuresOf({
      ...BASE,
      forwardPorts: [
        { sourcePort: "8000-8100", destination: "10.233.1.2" },
        { sourcePort: 8080, destination: "10.233.1.3", proto: "udp" },
        { sourcePort: 8080, destination: "10.233.1.4" },
      ],
    });
    expect(failures).toEqual([
      {
        property: "forwardPorts[2].sourcePort",
        message:
          'forwardPorts[2].sourcePort number 8080 (tcp) overlaps forwardPorts[0].sourcePort "8000-8100": an external port ' +
          "can forward to one destination only; remove one forward or make the ranges disjoint",
      },
    ]);
  });

  const hostile = HOSTILE.filter((s) => s !== "plain");
  it.each(hostile)("rejects the hostile string %j in every string input, naming the property", (bad) => {
    const failures = failuresOf({
      name: bad,
      backend: bad,
      internalInterfaces: [bad],
      internalIPs: [bad],
      externalInterface: bad,
      externalIP: bad,
      forwardPorts: [
        { sourcePort: bad, destination: "10.233.1.2" },
        { sourcePort: 80, destination: bad },
        { sourcePort: 81, destination: `10.233.1.2:${bad}` },
        { sourcePort: 82, destination: "10.233.1.2", proto: bad },
      ],
    });
    expect(failures.map((f) => f.property)).toEqual([
      "name",
      "backend",
      "internalInterfaces[0]",
      "internalIPs[0]",
      "externalInterface",
      "externalIP",
      "forwardPorts[0].sourcePort",
      "forwardPorts[1].destination",
      "forwardPorts[2].destination",
      "forwardPorts[3].proto",
    ]);
    for (const f of failures) {
      expect(f.message.startsWith(f.property)).toBe(true);
      expect(f.message).not.toContain("\n");
    }
  });
});

describe("dnatRules", () => {
  it("keeps equal ranges as one rule and expands a shifted range port by port", () => {
    const spec = parsed({
      ...BASE,
      forwardPorts: [
        { sourcePort: "8000-8002", destination: "10.233.1.2:8000-8002" },
        { sourcePort: "9000-9001", destination: "10.233.1.3:7000-7001", proto: "udp" },
      ],
    });
    expect(dnatRules(spec)).toEqual([
      {
        proto: "tcp",
        dport: { from: 8000, to: 8002 },
        address: "10.233.1.2",
        port: { from: 8000, to: 8002 },
      },
      {
        proto: "udp",
        dport: { from: 9000, to: 9000 },
        address: "10.233.1.3",
        port: { from: 7000, to: 7000 },
      },
      {
        proto: "udp",
        dport: { from: 9001, to: 9001 },
        address: "10.233.1.3",
        port: { from: 7001, to: 7001 },
      },
    ]);
  });
});

describe("parseNatInputs with IPv6", () => {
  it("parses NAT66: canonical ranges, externalIPv6 and IPv6 forwards apart from the IPv4 ones", () => {
    const spec = parsed({
      ...BASE,
      ipv6: "nat66",
      internalIPv6s: ["FD00:1234:0::/48", "fd00:1234::/48", "fd00:9::7"],
      externalIPv6: "2001:DB8:0::5",
      forwardPorts: [
        { sourcePort: 80, destination: "10.233.1.2" },
        { sourcePort: 80, destination: "[fd00:1234:0:1:0:0:0:2]:8080" },
      ],
    });
    expect(spec.forwardPorts).toEqual([
      { proto: "tcp", sourcePort: { from: 80, to: 80 }, destination: { address: "10.233.1.2" } },
    ]);
    expect(spec.ipv6).toEqual({
      mode: "nat66",
      internalIPv6s: ["fd00:1234::/48", "fd00:9::7"],
      externalIPv6: "2001:db8::5",
      forwardPorts: [
        {
          proto: "tcp",
          sourcePort: { from: 80, to: 80 },
          destination: { address: "fd00:1234:0:1::2", port: { from: 8080, to: 8080 } },
        },
      ],
    });
  });

  it("parses routed mode with global ranges, and leaves ipv6 out of an IPv4-only spec", () => {
    expect(parsed({ ...BASE, ipv6: "routed", internalIPv6s: ["2001:db8:1::/48"] }).ipv6).toEqual({
      mode: "routed",
      internalIPv6s: ["2001:db8:1::/48"],
    });
    expect("ipv6" in parsed(BASE)).toBe(false);
  });

  it("accepts the unknown sentinel in the IPv6 inputs, with no spec and no failures", () => {
    for (const raw of [
      { ...BASE, ipv6: UNKNOWN },
      { ...BASE, ipv6: "nat66", internalIPv6s: [UNKNOWN] },
      { ...BASE, ipv6: "nat66", externalIPv6: UNKNOWN },
    ]) {
      expect(parseNatInputs(raw)).toEqual({ failures: [] });
    }
  });

  it("rejects a global range for NAT66, pointing to routed mode", () => {
    const [failure] = failuresOf({ ...BASE, ipv6: "nat66", internalIPv6s: ["fd00::/8", "2001:db8:1::/48"] });
    expect(failure.property).toBe("internalIPv6s[1]");
    expect(failure.message).toContain('"2001:db8:1::/48" is not a unique local range (inside fc00::/7)');
    expect(failure.message).toContain('use ipv6: "routed"');
  });

  it("rejects ranges covering link-local, multicast or ::/0 in either mode, and IPv4-mapped text outright", () => {
    for (const mode of ["nat66", "routed"]) {
      const failures = failuresOf({
        ...BASE,
        ipv6: mode,
        internalIPv6s: ["fe80::/64", "ff02::/16", "::/0"],
      });
      expect(failures.map((f) => f.property)).toEqual([
        "internalIPv6s[0]",
        "internalIPv6s[1]",
        "internalIPv6s[2]",
      ]);
      expect(failures[0].message).toContain("covers link-local fe80::/10");
      expect(failures[1].message).toContain("covers multicast ff00::/8");
      expect(failures[2].message).toContain('give the containers\' own range, e.g. "fd00:1234::/48"');
    }
    expect(failuresOf({ ...BASE, ipv6: "nat66", internalIPv6s: ["::ffff:0:0/96"] })[0].property).toBe(
      "internalIPv6s[0]",
    );
  });

  it("rejects IPv6 inputs without ipv6, naming both modes", () => {
    const failures = failuresOf({
      ...BASE,
      internalIPv6s: ["fd00::/8"],
      externalIPv6: "2001:db8::5",
      forwardPorts: [{ sourcePort: 80, destination: "[fd00::2]:80" }],
    });
    expect(failures.map((f) => f.property)).toEqual([
      "internalIPv6s",
      "externalIPv6",
      "forwardPorts[0].destination",
    ]);
    expect(failures[0].message).toContain('set ipv6: "nat66" (masquerade, like IPv4) or "routed"');
    expect(failures[2].message).toBe(
      'forwardPorts[0].destination "[fd00::2]:80" is IPv6, which needs NAT66 on this NatRule: set ipv6: "nat66"',
    );
  });

  it("rejects port forwards and externalIPv6 in routed mode, saying why", () => {
    const failures = failuresOf({
      ...BASE,
      ipv6: "routed",
      externalIPv6: "2001:db8::5",
      forwardPorts: [{ sourcePort: 80, destination: "[2001:db8:1::2]:80" }],
    });
    expect(failures.map((f) => f.property)).toEqual(["externalIPv6", "forwardPorts[0].destination"]);
    expect(failures[0].message).toContain('ipv6 is "routed", which translates nothing');
    expect(failures[1].message).toContain(
      "a port forward is a DNAT, and routed containers are reached at their own address",
    );
  });

  it("rejects bad IPv6 text strictly: a bare address with a port, zone ids, special destinations, a bad mode", () => {
    const failures = failuresOf({
      ...BASE,
      ipv6: "nat64",
      internalIPv6s: ["fd00::/8%eth0", "fd00::1/8"],
      externalIPv6: "fe80::1%eth0",
      forwardPorts: [
        { sourcePort: 80, destination: "fd00::2" },
        { sourcePort: 81, destination: "[fe80::2]:80" },
        { sourcePort: 82, destination: "[::ffff:10.0.0.1]:80" },
        { sourcePort: 83, destination: "[fd00::2%eth0]:80" },
      ],
    });
    expect(failures.map((f) => f.property)).toEqual(
      [
        "internalIPv6s[0]",
        "internalIPv6s[1]",
        "externalIPv6",
        "forwardPorts[0].destination",
        "forwardPorts[1].destination",
        "forwardPorts[2].destination",
        "forwardPorts[3].destination",
        "ipv6",
      ].sort(
        (a, b) => failures.findIndex((f) => f.property === a) - failures.findIndex((f) => f.property === b),
      ),
    );
    const by = (p: string) => failures.find((f) => f.property === p)?.message ?? "";
    expect(by("ipv6")).toContain('"nat64"');
    expect(by("internalIPv6s[1]")).toContain("host bits are set");
    expect(by("forwardPorts[0].destination")).toContain('is ambiguous without brackets: write "[fd00::2]"');
    expect(by("forwardPorts[1].destination")).toContain("link-local");
    expect(by("forwardPorts[2].destination")).toContain("is not a valid destination");
    expect(by("forwardPorts[3].destination")).toContain("is not a valid destination");
  });

  it("checks overlapping sources per family: one port may forward IPv4 and IPv6, not twice the same family", () => {
    const [failure] = failuresOf({
      ...BASE,
      ipv6: "nat66",
      forwardPorts: [
        { sourcePort: 80, destination: "10.233.1.2" },
        { sourcePort: "80-81", destination: "[fd00::2]" },
        { sourcePort: 81, destination: "[fd00::3]" },
      ],
    });
    expect(failure.message).toBe(
      'forwardPorts[2].sourcePort number 81 (tcp, IPv6) overlaps forwardPorts[1].sourcePort "80-81": ' +
        "an external port can forward to one destination only; remove one forward or make the ranges disjoint",
    );
  });
});

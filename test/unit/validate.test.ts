// Input validators for `check`: good values pass, hostile ones fail with the property named in the message.
import { describe, expect, it } from "vitest";
import {
  bothOrNeither,
  Failure,
  formatFailures,
  isUnknown,
  parsePortRange,
  UNKNOWN,
  validateAddressOrCidr,
  validateCidr,
  validateContainerName,
  validateFlakeRef,
  validateHost,
  validateInterfaceName,
  validateIPv4,
  validateInterfaceAddress,
  validateList,
  validateNmDeviceSpec,
  validateOneOf,
  validatePort,
  validatePortRange,
  validateProtocol,
} from "../../provider/core/validate";

/** Inputs an attacker or a careless paste might send; none may pass any string validator below. */
const HOSTILE = [
  'we"b',
  "we'b",
  "$(reboot)",
  "`reboot`",
  "a\nb",
  "a;b",
  "a b",
  "a\0b",
  "-oProxyCommand=x",
  "ünï",
  "a|b",
  "a&&b",
  "a>b",
  "${HOME}",
  "\\x",
  "",
  "x".repeat(2000),
];

function expectRejected(failures: Failure[], property: string): void {
  expect(failures).toHaveLength(1);
  expect(failures[0].property).toBe(property);
  expect(failures[0].message.startsWith(`${property} `)).toBe(true);
}

const STRING_VALIDATORS: [string, (value: unknown, property: string) => Failure[]][] = [
  ["container name", (v, p) => validateContainerName(v, p)],
  ["interface name", (v, p) => validateInterfaceName(v, p)],
  ["wildcard interface name", (v, p) => validateInterfaceName(v, p, { wildcard: true })],
  ["IPv4 address", (v, p) => validateIPv4(v, p)],
  ["CIDR", (v, p) => validateCidr(v, p)],
  ["address or CIDR", (v, p) => validateAddressOrCidr(v, p)],
  ["port", (v, p) => validatePort(v, p)],
  ["port range", (v, p) => validatePortRange(v, p)],
  ["protocol", (v, p) => validateProtocol(v, p)],
  ["host", (v, p) => validateHost(v, p)],
  ["NetworkManager device spec", (v, p) => validateNmDeviceSpec(v, p)],
  ["flake reference", (v, p) => validateFlakeRef(v, p)],
];

describe("every validator", () => {
  describe.each(STRING_VALIDATORS)("%s", (_label, validate) => {
    it.each(HOSTILE)("rejects hostile input %j naming the property", (value) => {
      expectRejected(validate(value, "some.prop"), "some.prop");
    });

    it("accepts the engine's unknown value during preview", () => {
      expect(validate(UNKNOWN, "some.prop")).toEqual([]);
    });

    it("rejects a missing value as required", () => {
      expect(validate(undefined, "some.prop")).toEqual([
        { property: "some.prop", message: "some.prop is required" },
      ]);
    });

    it("rejects a value of the wrong type", () => {
      expectRejected(validate({ toString: () => "web" }, "some.prop"), "some.prop");
    });
  });

  it("accepts a missing value when optional", () => {
    expect(validateIPv4(undefined, "hostAddress", { optional: true })).toEqual([]);
    expect(validatePort(null, "port", { optional: true })).toEqual([]);
  });

  it("recognises only the exact unknown sentinel", () => {
    expect(isUnknown(UNKNOWN)).toBe(true);
    expect(isUnknown(UNKNOWN.toUpperCase())).toBe(false);
  });
});

describe("container names", () => {
  it.each(["a", "web", "web-1", "abcdefghijk", "a0-"])("accepts %j", (name) => {
    expect(validateContainerName(name)).toEqual([]);
  });

  it("rejects an underscore with the message users will see", () => {
    expect(validateContainerName("web_frontend")[0].message).toBe(
      'name "web_frontend" is not a valid container name: use 1-11 characters a-z, 0-9 and "-", starting with a letter (it has 12): the host side of the veth is "ve-<name>" and Linux interface names must fit in 15 bytes, so nixos-container refuses longer names and long ones collide when truncated',
    );
  });

  it.each(["abcdefghijkl", "Web", "1web", "-web", "web*", "wéb", "web.1"])("rejects %j", (name) => {
    expectRejected(validateContainerName(name, "name"), "name");
  });
});

describe("interface names", () => {
  it.each(["eth0", "ve-web", "enp0s31f6", "br.100", "wlan_0", "a+b", "123456789012345"])(
    "accepts %j",
    (name) => {
      expect(validateInterfaceName(name, "externalInterface")).toEqual([]);
    },
  );

  it.each(["ve-+", "ve-*", "eth+"])("accepts wildcard %j where wildcards are allowed", (name) => {
    expect(validateInterfaceName(name, "internalInterfaces[0]", { wildcard: true })).toEqual([]);
  });

  it.each(["ve-+", "ve-*", "eth*0"])("rejects wildcard %j where wildcards are not allowed", (name) => {
    expectRejected(validateInterfaceName(name, "hostInterface"), "hostInterface");
  });

  it.each([".", "..", "a/b", "a:b", "a\tb", "1234567890123456", "+", "*", "ve-**", "ve-*+", "-eth0"])(
    "rejects %j even with wildcards allowed",
    (name) => {
      expectRejected(
        validateInterfaceName(name, "internalInterfaces[0]", { wildcard: true }),
        "internalInterfaces[0]",
      );
    },
  );

  it("rejects a name over 15 bytes counted in UTF-8, not characters", () => {
    expect(validateInterfaceName("ééééééé", "hostInterface")[0].message).toMatch(/14 bytes|not a valid/);
    expect(validateInterfaceName("éééééééé", "hostInterface")[0].message).toMatch(/16 bytes/);
  });
});

describe("addresses, CIDRs and ports", () => {
  it("accepts good addresses and ranges", () => {
    expect(validateIPv4("10.233.1.2", "hostAddress")).toEqual([]);
    expect(validateCidr("10.233.0.0/16", "cidr")).toEqual([]);
    expect(validateCidr("10.233.1.0/16", "cidr", { requireNetwork: false })).toEqual([]);
    expect(validateAddressOrCidr("10.233.1.9", "exclude[0]")).toEqual([]);
    expect(validateAddressOrCidr("10.233.1.0/24", "exclude[0]")).toEqual([]);
  });

  it.each(["10.1.1", "010.1.1.1", "10.1.1.256", "0x0a.0.0.1", "10.1.1.1/32"])(
    "rejects address %j",
    (value) => {
      expectRejected(validateIPv4(value, "localAddress"), "localAddress");
    },
  );

  it("rejects a CIDR with host bits and says which one to use", () => {
    expect(validateCidr("10.233.1.0/16", "cidr")[0].message).toContain('use "10.233.0.0/16"');
  });

  it.each([1, 80, 65535, "8080"])("accepts port %j", (value) => {
    expect(validatePort(value, "port")).toEqual([]);
  });

  it.each([0, 65536, -1, 80.5, "080", "80 ", "0x50", Number.NaN, "1e3"])("rejects port %j", (value) => {
    expectRejected(validatePort(value, "forwardPorts[0].sourcePort"), "forwardPorts[0].sourcePort");
  });

  it("parses port ranges with either separator", () => {
    expect(parsePortRange("8000:8010")).toEqual({ low: 8000, high: 8010 });
    expect(parsePortRange("8000-8010")).toEqual({ low: 8000, high: 8010 });
    expect(parsePortRange(22)).toEqual({ low: 22, high: 22 });
    expect(parsePortRange("8080:8080")).toEqual({ low: 8080, high: 8080 });
  });

  it.each(["8010:8000", "0:10", "1:65536", "80,81", "80:", ":80", "80::81", "80 - 81"])(
    "rejects port range %j",
    (value) => {
      expectRejected(validatePortRange(value, "forwardPorts[1].sourcePort"), "forwardPorts[1].sourcePort");
    },
  );

  it("accepts tcp and udp only", () => {
    expect(validateProtocol("tcp", "proto")).toEqual([]);
    expect(validateProtocol("udp", "proto")).toEqual([]);
    expect(validateProtocol("TCP", "proto")[0].message).toBe(
      'proto "TCP" is not allowed: use one of "tcp", "udp"',
    );
    expect(validateOneOf("nft", "backend", ["nftables", "iptables"])[0].property).toBe("backend");
  });
});

describe("SSH hosts", () => {
  it.each(["web1", "web1.example.com", "web1.example.com.", "192.0.2.10", "a-b.c", "xn--bcher-kva.example"])(
    "accepts %j",
    (host) => {
      expect(validateHost(host)).toEqual([]);
    },
  );

  it.each([
    "10.0.0.256",
    "10.0.0",
    "-web",
    "web-",
    "a..b",
    "web_1",
    "user@web",
    "web:22",
    "[::1]",
    "a".repeat(64),
  ])("rejects %j", (host) => {
    expectRejected(validateHost(host), "connection.host");
  });
});

describe("NetworkManager device specs", () => {
  it.each([
    "*",
    "eth0",
    "00:11:22:33:44:55",
    "interface-name:ve-*",
    "interface-name:~VE-?x",
    "interface-name:=ve-web",
    "mac:00:11:22:33:44:55",
    "s390-subchannels:0.0.09a0",
    "type:veth",
    "driver:veth",
    "driver:e1000e/3.2.6-k",
    "except:interface-name:eth0",
    "except:type:wifi",
  ])("accepts %j", (spec) => {
    expect(validateNmDeviceSpec(spec, "devices[0]")).toEqual([]);
  });

  it.each([
    "interface-name:ve-*,eth0",
    "interface-name:ve-*;eth0",
    "interface-name:ve-*\nunmanaged-devices=*",
    "except:eth0",
    "except:except:type:wifi",
    "except:*",
    "foo:bar",
    "ve-*",
    "mac:00:11:22:33:44",
    "interface-name:",
    "interface-name:=ve-*",
    "interface-name:-x",
    "type:Wi Fi",
    "driver:",
    "#comment",
  ])("rejects %j", (spec) => {
    expectRejected(validateNmDeviceSpec(spec, "devices[3]"), "devices[3]");
  });
});

describe("flake references", () => {
  it.each([
    "github:me/containers#web",
    "git+https://git.example.com/c.git?ref=main&rev=0123abcd#web",
    "path:/etc/nixos",
    ".#container",
    "/srv/flake#web",
    "https://example.com/f.tar.gz?narHash=sha256-abc%3D",
  ])("accepts %j", (ref) => {
    expect(validateFlakeRef(ref)).toEqual([]);
  });

  it.each(["github:me/x#web\n", "github:me/x#$(id)", "github:me/x#web name", "--option", "a*b", "<nixpkgs>"])(
    "rejects %j",
    (ref) => {
      expectRejected(validateFlakeRef(ref), "flake");
    },
  );
});

describe("both-or-neither", () => {
  it("accepts both or neither", () => {
    expect(
      bothOrNeither({ hostAddress: "10.0.0.1", localAddress: "10.0.0.2" }, "hostAddress", "localAddress"),
    ).toEqual([]);
    expect(bothOrNeither({}, "hostAddress", "localAddress")).toEqual([]);
    expect(
      bothOrNeither({ hostAddress: UNKNOWN, localAddress: "10.0.0.2" }, "hostAddress", "localAddress"),
    ).toEqual([]);
  });

  it("rejects one without the other, naming the missing property", () => {
    expect(bothOrNeither({ hostAddress: "10.0.0.1" }, "hostAddress", "localAddress")).toEqual([
      {
        property: "localAddress",
        message:
          "localAddress is missing while hostAddress is set: set both hostAddress and localAddress, or neither",
      },
    ]);
    expect(bothOrNeither({ localAddress: UNKNOWN }, "hostAddress", "localAddress", "veth.")[0].property).toBe(
      "veth.hostAddress",
    );
  });
});

describe("lists", () => {
  it("rejects every bad element, each under its own index", () => {
    const failures = validateList(["ve-+", "bad name", "ok", "$(x)"], "internalInterfaces", (v, p) =>
      validateInterfaceName(v, p, { wildcard: true }),
    );
    expect(failures.map((f) => f.property)).toEqual(["internalInterfaces[1]", "internalInterfaces[3]"]);
    expect(formatFailures(failures).split("\n")).toHaveLength(2);
  });

  it("rejects a non-list and accepts unknown", () => {
    expect(validateList("ve-+", "devices", (v, p) => validateNmDeviceSpec(v, p))[0].message).toBe(
      'devices must be a list, got "ve-+"',
    );
    expect(validateList(UNKNOWN, "devices", (v, p) => validateNmDeviceSpec(v, p))).toEqual([]);
  });
});

describe("validateInterfaceAddress", () => {
  it("accepts private unicast addresses", () => {
    expect(validateInterfaceAddress("10.233.1.2", "localAddress")).toEqual([]);
    expect(validateInterfaceAddress("192.168.50.5", "hostAddress")).toEqual([]);
  });

  it("rejects addresses an interface cannot usefully carry, saying why", () => {
    for (const [address, why] of [
      ["0.0.0.0", /this network/],
      ["127.0.0.2", /loopback/],
      ["169.254.1.1", /link-local/],
      ["224.0.0.1", /multicast/],
      ["255.255.255.255", /multicast or reserved/],
    ] as const) {
      const [failure] = validateInterfaceAddress(address, "hostAddress");
      expect(failure.property).toBe("hostAddress");
      expect(failure.message).toMatch(why);
      expect(failure.message).toContain(`"${address}"`);
    }
  });
});

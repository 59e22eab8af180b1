// Parsing and validating @pulumi/command-shaped connections: defaults, every offender listed, no secret echoed.
import { describe, expect, it } from "vitest";
import { parseConnection, parseHostKeySpec, validateConnection } from "../../provider/ssh/connection";
import { fingerprintOf } from "../../provider/ssh/hostKey";
import { fleetConnection } from "../../provider/resources/fleet";

const ED25519_LINE = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

describe("parseConnection", () => {
  it("applies @pulumi/command's defaults", () => {
    const spec = parseConnection({ host: "198.18.0.11" });
    expect(spec).toMatchObject({
      host: "198.18.0.11",
      port: 22,
      user: "root",
      dialErrorLimit: 10,
      perDialTimeout: 15,
    });
  });

  it("keeps a jump host with its own defaults", () => {
    const spec = parseConnection({ host: "10.0.0.5", proxy: { host: "bastion.example.com", user: "ops" } });
    expect(spec.proxy).toMatchObject({ host: "bastion.example.com", port: 22, user: "ops" });
  });

  it("rejects a missing host", () => {
    expect(validateConnection({ port: 22 })).toEqual([expect.stringMatching(/connection\.host is required/)]);
  });

  it("rejects hostile host and user values, naming each property", () => {
    const problems = validateConnection({
      host: "-oProxyCommand=touch /tmp/x",
      user: "root; rm -rf /",
      port: 70000,
    });
    expect(problems.join("\n")).toMatch(/connection\.host "-oProxyCommand=touch \/tmp\/x" is invalid/);
    expect(problems.join("\n")).toMatch(/connection\.user "root; rm -rf \/" is invalid/);
    expect(problems.join("\n")).toMatch(
      /connection\.port 70000 is invalid: use a whole number from 1 to 65535/,
    );
  });

  it("rejects unknown fields, also on a jump host of a jump host, and chains longer than 8 hops", () => {
    const problems = validateConnection({
      host: "a",
      hostname: "b",
      proxy: { host: "c", proxy: { host: "d", colour: "red" } },
    });
    expect(problems.join("\n")).toMatch(/connection\.hostname is not a connection field/);
    expect(problems.join("\n")).toMatch(/connection\.proxy\.proxy\.colour is not a connection field/);
    let chain: Record<string, unknown> = { host: "last" };
    for (let i = 0; i < 9; i++) chain = { host: `hop${i}`, proxy: chain };
    expect(validateConnection(chain).join("\n")).toMatch(/at most 8 jump hosts in a chain/);
  });

  it("parses a chain of jump hosts, each with its own defaults", () => {
    const spec = parseConnection({
      host: "t",
      proxy: { host: "b1", user: "jump", proxy: { host: "b2", port: 2222 } },
    });
    expect(spec.proxy).toMatchObject({
      host: "b1",
      user: "jump",
      port: 22,
      proxy: { host: "b2", port: 2222, user: "root" },
    });
  });

  it("rejects privateKeyPassword without privateKey and never echoes secrets", () => {
    const problems = validateConnection({ host: "a", privateKeyPassword: "hunter2", password: 42 });
    const text = problems.join("\n");
    expect(text).toMatch(/privateKeyPassword is set but connection\.privateKey is not/);
    expect(text).toMatch(/connection\.password must be a string/);
    expect(text).not.toContain("hunter2");
  });

  it("rejects a malformed hostKey", () => {
    expect(validateConnection({ host: "a", hostKey: "ssh-ed25519 !!!" }).join("\n")).toMatch(
      /connection\.hostKey/,
    );
    expect(validateConnection({ host: "a", hostKey: ED25519_LINE })).toEqual([]);
  });
});

describe("parseHostKeySpec", () => {
  it("accepts a public key line, a known_hosts line and a fingerprint", () => {
    const line = parseHostKeySpec(ED25519_LINE + " root@h1");
    expect(line?.kind).toBe("key");
    expect(parseHostKeySpec("h1,198.18.0.11 " + ED25519_LINE)?.kind).toBe("key");
    if (line?.kind !== "key") throw new Error("unreachable");
    const fp = fingerprintOf(line.blob);
    expect(fp).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(parseHostKeySpec(fp)).toEqual({ kind: "fingerprint", fingerprint: fp });
  });

  it("rejects a key line whose type does not match its blob", () => {
    expect(parseHostKeySpec(ED25519_LINE.replace("ssh-ed25519", "ssh-rsa"))).toBeUndefined();
  });
});

describe("sudo", () => {
  it("takes sudo and sudoPassword on the target, and says what is wrong otherwise", () => {
    expect(parseConnection({ host: "h", user: "deploy", sudo: true, sudoPassword: "pw" })).toMatchObject({
      user: "deploy",
      sudo: true,
      sudoPassword: "pw",
    });
    expect(() => parseConnection({ host: "h", sudo: "yes" })).toThrow(
      /connection\.sudo must be true or false/,
    );
    expect(() => parseConnection({ host: "h", sudoPassword: "pw" })).toThrow(
      /connection\.sudoPassword is set but connection\.sudo is not true/,
    );
    expect(() => parseConnection({ host: "h", proxy: { host: "b", sudo: true } })).toThrow(
      /connection\.proxy\.sudo is not supported: a jump host only forwards/,
    );
  });

  it("is handed from Fleet defaults to each host, a host's own value winning", () => {
    expect(
      fleetConnection(
        { name: "a", address: "192.0.2.1", sudo: false } as never,
        {
          user: "deploy",
          sudo: true,
          sudoPassword: "pw",
        } as never,
      ),
    ).toMatchObject({ user: "deploy", sudo: false, sudoPassword: "pw" });
  });
});

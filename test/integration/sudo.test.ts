// A non-root SSH user with sudo rights runs the full lifecycle through the real provider host; a user without
// them gets a clear error at the first operation. Lab host h1: `labuser` (password login), sudoers set per test.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { h1 } from "./fixture";
import { MiniEngine } from "../harness/engine";
import { closeAll } from "../harness/providerHost";
import { labExec, labExecOk } from "../lab/labHosts";

let engine: MiniEngine;
beforeAll(async () => {
  engine = await MiniEngine.start();
});
afterAll(async () => {
  await closeAll();
});

const SUDOERS = "/etc/sudoers.d/pnc-labuser";
afterEach(() => {
  labExec(h1, ["rm", "-f", SUDOERS]);
});

function allow(rule: string): void {
  labExecOk(h1, ["sh", "-c", `printf '%s\\n' '${rule}' > ${SUDOERS} && chmod 0440 ${SUDOERS}`]);
}

const asLabuser = (extra: Record<string, unknown>) => ({
  host: h1.address,
  port: h1.port,
  user: h1.passwordUser,
  password: h1.password,
  sudo: true,
  ...extra,
});

describe("a non-root SSH user through sudo", () => {
  it.each([
    ["passwordless (NOPASSWD)", "labuser ALL=(root) NOPASSWD: ALL", {}],
    ["with its password on stdin", "labuser ALL=(root) ALL", { sudoPassword: h1.password }],
  ])("runs the Container, NatRule and NmUnmanaged lifecycle: %s", async (_how, rule, extra) => {
    allow(rule);
    const connection = asLabuser(extra);
    const c = await engine.create("Container", "sud", { connection, name: "sud", driver: "netns" });
    const nat = await engine.create("NatRule", "sudnat", {
      connection,
      name: "sudnat",
      externalInterface: "eth0",
      internalIPs: ["10.233.0.0/16"],
    });
    const nm = await engine.create("NmUnmanaged", "sudnm", { connection, name: "sudnm" });
    try {
      expect(c.outs.running).toBe(true);
      expect(nat.outs.live).toBe("applied");
      expect(nm.outs.present).toBe(true);
      // Made as root: the marker is root's, the container's namespace exists.
      expect(
        labExecOk(h1, ["stat", "-c", "%U", "/var/lib/pulumi-nixos-containers/owners/container-sud"]).trim(),
      ).toBe("root");
      expect(await engine.refresh(c)).toBe(true);
      expect(
        await engine.up(c, {
          connection,
          name: "sud",
          driver: "netns",
          hostAddress: "10.233.90.1",
          localAddress: "10.233.90.2",
        }),
      ).toBe("updated");
    } finally {
      await engine.destroy(nm);
      await engine.destroy(nat);
      await engine.destroy(c);
    }
    expect(labExec(h1, ["ip", "netns", "list"]).stdout).not.toMatch(/^sud\b/m);
    // The password never went onto a command line: sudo's own log of commands shows none.
    expect(labExec(h1, ["sh", "-c", "ps -eo args"]).stdout).not.toContain(h1.password);
  });

  it("fails clearly at the first operation when the user has no sudo rights, changing nothing", async () => {
    await expect(
      engine.create("Container", "nosud", { connection: asLabuser({}), name: "nosud", driver: "netns" }),
    ).rejects.toThrow(
      /sudo refused to run commands as root for user "labuser".*a password is required.*give "labuser" sudo rights/s,
    );
    await expect(
      engine.create("Container", "nosud", {
        connection: asLabuser({ sudoPassword: h1.password }),
        name: "nosud",
        driver: "netns",
      }),
    ).rejects.toThrow(
      /sudo refused to run commands as root for user "labuser".*not in the sudoers file|sudo refused.*labuser/s,
    );
    expect(labExec(h1, ["ip", "netns", "list"]).stdout).not.toMatch(/^nosud\b/m);
  });
});

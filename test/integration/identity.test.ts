// One known key per host for a stack (HostIdentity), through the real provider host against lab sshd: after a
// host's key changes, a resource added to it is refused before authenticating and nothing on the host changes;
// the jump host's key is recorded and enforced the same way.
import * as fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connection, dropSshTo, h1, h2, lab } from "./fixture";
import { MiniEngine, StateEntry } from "../harness/engine";
import { closeAll } from "../harness/providerHost";
import { countHandshakes, labConnection, labExec, labExecOk, labHost, restartSshd } from "../lab/labHosts";

let engine: MiniEngine;
beforeAll(async () => {
  engine = await MiniEngine.start();
});
afterAll(async () => {
  await closeAll();
});

const hj = labHost("hj", lab);
const HOST_KEY = "/etc/ssh/ssh_host_ed25519_key";

/** Gives h1 a new host key (a reinstall, or a man in the middle) until `restore` puts the old one back. */
function changeHostKey(): { newKey: string; restore: () => void } {
  labExecOk(h1, ["sh", "-c", `cp ${HOST_KEY} /root/pnc-key.bak && cp ${HOST_KEY}.pub /root/pnc-key.pub.bak`]);
  labExecOk(h1, [
    "sh",
    "-c",
    `rm -f ${HOST_KEY} ${HOST_KEY}.pub && ssh-keygen -q -t ed25519 -N '' -f ${HOST_KEY}`,
  ]);
  restartSshd(h1, { dropSessions: true });
  const newKey = labExecOk(h1, ["cat", `${HOST_KEY}.pub`])
    .trim()
    .split(" ")
    .slice(0, 2)
    .join(" ");
  return {
    newKey,
    restore: () => {
      labExecOk(h1, [
        "sh",
        "-c",
        `mv /root/pnc-key.bak ${HOST_KEY} && mv /root/pnc-key.pub.bak ${HOST_KEY}.pub`,
      ]);
      restartSshd(h1, { dropSessions: true });
    },
  };
}

function pinnedTo(identity: StateEntry, base: Record<string, unknown>): Record<string, unknown> {
  return { ...base, hostKey: identity.outs.hostKey };
}

describe("HostIdentity", () => {
  it("records the host's key once; after it changes, a container added to the host is refused and nothing there changes", async () => {
    const identity = await engine.create("HostIdentity", "h1-identity", { connection: connection(h1) });
    expect(identity.outs.hostKey).toBe(h1.hostKey);
    expect(identity.outs.hostKeyFingerprint).toBe(h1.hostKeyFingerprint);
    const first = await engine.create("Container", "idc1", {
      connection: pinnedTo(identity, connection(h1)),
      name: "idc1",
      driver: "netns",
    });
    const changed = changeHostKey();
    try {
      const logins = countHandshakes(h1);
      // The next `up` adds one more container to that host: its connection carries the recorded key.
      await expect(
        engine.create("Container", "idc2", {
          connection: pinnedTo(identity, connection(h1)),
          name: "idc2",
          driver: "netns",
        }),
      ).rejects.toThrow(
        new RegExp(
          `host key mismatch for ${h1.address}:22: expected ${h1.hostKeyFingerprint.replace(/[+/]/g, "\\$&")}.*before authenticating`,
          "s",
        ),
      );
      expect(countHandshakes(h1)).toBe(logins); // no credentials were handed over
      expect(labExec(h1, ["ip", "netns", "list"]).stdout).not.toMatch(/^idc2\b/m);
      // Refresh of the identity says so too, with the way to accept a deliberate change.
      await expect(engine.refresh(identity)).rejects.toThrow(/host key mismatch.*replace this HostIdentity/s);
      // The one documented way: pin the new key.
      expect(await engine.up(identity, { connection: { ...connection(h1), hostKey: changed.newKey } })).toBe(
        "updated",
      );
      expect(identity.outs.hostKey).toBe(changed.newKey);
    } finally {
      changed.restore();
    }
    await engine.destroy(first);
    await engine.destroy(identity);
  });

  it("records the jump host's key and refuses a changed bastion, naming it", async () => {
    const viaJump = labConnection(hj) as unknown as Record<string, unknown>;
    const identity = await engine.create("HostIdentity", "hj-identity", { connection: viaJump });
    expect(identity.outs).toMatchObject({ hostKey: hj.hostKey, proxyHostKey: h1.hostKey });
    // Another bastion key than the recorded one (a changed bastion): refused, naming the bastion.
    const otherKey = fs
      .readFileSync(`${h1.privateKeyPath}.pub`, "utf8")
      .trim()
      .split(" ")
      .slice(0, 2)
      .join(" ");
    const proxy = viaJump.proxy as Record<string, unknown>;
    await expect(
      engine.create("Container", "idj", {
        connection: { ...viaJump, hostKey: identity.outs.hostKey, proxy: { ...proxy, hostKey: otherKey } },
        name: "idj",
        driver: "netns",
      }),
    ).rejects.toThrow(new RegExp(`host key mismatch for ${h1.address}:22`));
    // With the recorded keys as pins, it works through the bastion.
    const c = await engine.create("Container", "idj", {
      connection: {
        ...viaJump,
        hostKey: identity.outs.hostKey,
        proxy: { ...proxy, hostKey: identity.outs.proxyHostKey },
      },
      name: "idj",
      driver: "netns",
    });
    expect(c.outs.running).toBe(true);
    await engine.destroy(c);
    await engine.destroy(identity);
  });

  it("goes through a chain of two jump hosts, recording and enforcing each hop's key", async () => {
    // hj is reachable only from h1; h1 is reached here through h2: two hops.
    const viaH1 = labConnection(hj) as unknown as Record<string, unknown>;
    const h1Hop = viaH1.proxy as Record<string, unknown>;
    const chain = { ...viaH1, proxy: { ...h1Hop, proxy: connection(h2) } };
    const loginsOnH2 = countHandshakes(h2);
    const identity = await engine.create("HostIdentity", "chain-identity", { connection: chain });
    expect(identity.outs).toMatchObject({
      hostKey: hj.hostKey,
      proxyHostKey: h1.hostKey,
      proxyHostKeys: [h1.hostKey, h2.hostKey],
    });
    expect(countHandshakes(h2)).toBeGreaterThan(loginsOnH2); // the outer hop was really used
    const pins = {
      ...chain,
      hostKey: hj.hostKey,
      proxy: { ...h1Hop, hostKey: h1.hostKey, proxy: { ...connection(h2), hostKey: h2.hostKey } },
    };
    const c = await engine.create("Container", "chn", { connection: pins, name: "chn", driver: "netns" });
    expect(c.outs.running).toBe(true);
    expect(labExecOk(hj, ["ip", "netns", "list"])).toMatch(/^chn\b/m);
    await engine.destroy(c);
    // Another key for the outer hop is refused, naming it.
    await expect(
      engine.create("Container", "chn2", {
        connection: { ...pins, proxy: { ...pins.proxy, proxy: { ...connection(h2), hostKey: h1.hostKey } } },
        name: "chn2",
        driver: "netns",
      }),
    ).rejects.toThrow(new RegExp(`host key mismatch for ${h2.address}:22`));
    await engine.destroy(identity);
  });

  it("gives up within dialErrorLimit × perDialTimeout on a bastion that drops the packets, saying so", async () => {
    const undo = dropSshTo(h1, hj.address);
    try {
      const viaJump = labConnection(hj) as unknown as Record<string, unknown>;
      await expect(
        engine.create("Container", "drp", {
          connection: { ...viaJump, dialErrorLimit: 2, perDialTimeout: 2 },
          name: "drp",
          driver: "netns",
        }),
      ).rejects.toThrow(
        new RegExp(`the jump host did not open a tunnel to ${hj.address}:22 within 2 s after 2 attempts`),
      );
    } finally {
      undo();
    }
    expect(labExecOk(hj, ["ip", "netns", "list"])).not.toMatch(/^drp\b/m);
  });
});

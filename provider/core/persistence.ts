// What `persist: true` writes on a host: a systemd unit of ours and the script it runs, so that a reboot (and,
// for NAT, a firewall reload) restores what we applied. Rendered from the spec in `check`, so preview shows
// both files before anything is written.
//
// Where: /etc/systemd/system.control is on systemd's unit search path (systemd.unit(5), "System Unit Search
// Path"), persistent, and writable on NixOS too, where /etc/systemd/system is a read-only link into the Nix
// store. `[Install]` is only read by `systemctl enable`, so the wants-links it describes are made by hand in
// the same directory (systemd reads `<unit>.wants/` in every directory of the search path).

/** Our units' directory (see above). */
export const UNIT_DIR = "/etc/systemd/system.control";

/** Where the scripts our units run live (with the rest of our state, kept across reboots). */
export const PERSIST_DIR = "/var/lib/pulumi-nixos-containers/persist";

/**
 * Firewall services whose start, restart or reload may flush what we applied: NixOS's nftables.service (which
 * flushes the whole ruleset with stateVersion < 23.11 or a custom ruleset) and firewall.service, firewalld,
 * and Debian's nftables.service and netfilter-persistent.service. Units that do not exist on a host are
 * ignored by systemd.
 */
export const FIREWALL_UNITS = [
  "nftables.service",
  "firewall.service",
  "firewalld.service",
  "netfilter-persistent.service",
] as const;

/** What a persisted object is to boot: links and namespaces (before the network), or firewall rules. */
export type PersistRole = "links" | "firewall";

/** The unit and script of one persisted object, as written on the host. */
export interface PersistPlan {
  /** `pnc-nat-web.service`. */
  readonly unit: string;
  readonly unitPath: string;
  readonly unitText: string;
  readonly scriptPath: string;
  readonly scriptText: string;
  /** The units whose `.wants/` link ours (what `[Install] WantedBy=` says). */
  readonly wantedBy: readonly string[];
}

/**
 * A name as part of a unit name: what systemd-escape does to characters unit names cannot hold ("+" of an
 * interface name becomes "\x2b"); our container and rule names need none.
 */
function unitEscape(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

/** The unit that restores container `name` (netns driver). */
export function containerUnit(name: string): string {
  return persistPaths("container", name).unit;
}

/** Where the unit and script of object `kind`-`name` live (also when `persist` is off: read looks there). */
export function persistPaths(
  kind: string,
  name: string,
): Pick<PersistPlan, "unit" | "unitPath" | "scriptPath"> {
  const unit = `pnc-${kind}-${unitEscape(name)}.service`;
  return { unit, unitPath: `${UNIT_DIR}/${unit}`, scriptPath: `${PERSIST_DIR}/${kind}-${name}.sh` };
}

/**
 * The unit for object `kind`-`name` (`subject` names it: `NatRule web`) that runs `script` at boot.
 *
 * - links (containers): like a firewall's unit, before `network-pre.target`, which it pulls in, so namespaces
 *   and veths exist before NetworkManager or networkd start and before our NAT units (below) run.
 * - firewall (NatRule): after `network-pre.target` and the firewall services, before `network.target`: the
 *   rules are back before anything that waits for the network starts. `PartOf=` the firewall services (their
 *   stop and restart reach us; restarting re-runs our script after theirs, by `After=`),
 *   `ReloadPropagatedFrom=` them (their reload runs our ExecReload, the same script) and wanted by them, so a
 *   firewall started again later starts us again too.
 *
 * Both are `DefaultDependencies=no` (they must run before basic.target, as firewalls do) and need only the
 * mount that holds their script (`RequiresMountsFor=`).
 */
export function renderPersistPlan(
  kind: string,
  name: string,
  subject: string,
  role: PersistRole,
  script: string,
  /** Units of ours this one needs first (a VethPair: its container's), wanted and ordered after. */
  after: readonly string[] = [],
): PersistPlan {
  const paths = persistPaths(kind, name);
  const firewall = role === "firewall";
  const firewalls = FIREWALL_UNITS.join(" ");
  const exec = `/bin/sh ${paths.scriptPath}`;
  const wantedBy = ["multi-user.target", ...(firewall ? FIREWALL_UNITS : [])];
  const lines = [
    `# Managed by pulumi-nixos-containers (${subject}): restores it after a reboot${firewall ? " or a firewall reload" : ""}.`,
    "[Unit]",
    `Description=pulumi-nixos-containers: restore ${subject}`,
    "DefaultDependencies=no",
    `RequiresMountsFor=${PERSIST_DIR}`,
    ...(firewall
      ? [
          `After=local-fs.target network-pre.target ${firewalls}`,
          "Before=network.target shutdown.target",
          `PartOf=${firewalls}`,
          `ReloadPropagatedFrom=${firewalls}`,
        ]
      : [
          `After=${["local-fs.target", ...after].join(" ")}`,
          `Wants=${["network-pre.target", ...after].join(" ")}`,
          "Before=network-pre.target shutdown.target",
        ]),
    "Conflicts=shutdown.target",
    "",
    "[Service]",
    "Type=oneshot",
    "RemainAfterExit=yes",
    `ExecStart=${exec}`,
    ...(firewall ? [`ExecReload=${exec}`] : []),
    "",
    "[Install]",
    `WantedBy=${wantedBy.join(" ")}`,
  ];
  const header = `#!/bin/sh\n# Managed by pulumi-nixos-containers (${subject}): run by ${paths.unit} to restore it.\n`;
  return {
    ...paths,
    unitText: `${lines.join("\n")}\n`,
    scriptText: `${header}${script.endsWith("\n") ? script : `${script}\n`}`,
    wantedBy,
  };
}

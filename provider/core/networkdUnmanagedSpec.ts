// The systemd-networkd `.network` file of a NetworkdUnmanaged resource: validated inputs, its path and its exact
// content, computed in `check` so preview shows the file before anything is written.

import { display } from "./display";
import { Failure, Parsed, containsUnknown, isUnknown, validateList, validateResourceName } from "./validate";

/** A validated NetworkdUnmanaged. */
export interface NetworkdSpec {
  /** The resource name; it names the `.network` file. */
  readonly name: string;
  /** networkd `[Match] Name=` globs, in input order without duplicates. */
  readonly interfaces: string[];
}

const NETWORKD_NAME_MAX_LENGTH = 41;
/** The host ends of nixos-container veths: `ve-<name>`, and `vb-<name>` when bridged (systemd-nspawn's names too). */
export const DEFAULT_NETWORKD_INTERFACES = ["ve-*", "vb-*"];

/**
 * Where the file lives. networkd sorts the `.network` files of /etc, /run and /usr/lib/systemd/network by file
 * name and applies the first that matches a link, so "10-" comes before the stock `80-container-ve.network` and
 * `80-container-vb.network` (which give `ve-*` an address, a DHCP server and masquerading, and enslave `vb-*`).
 */
export function networkdFilePath(name: string): string {
  return `/etc/systemd/network/10-pulumi-nixos-containers-${name}.network`;
}

const GLOB_CHARS = /^[A-Za-z0-9._@*?[\]!-]+$/;
const LITERAL_START = /^[A-Za-z0-9_]/;
const ALLOWED =
  'use one interface name or shell glob per entry (1-64 characters: letters, digits, ".", "_", "@", "-" and ' +
  'the glob characters "*", "?", "[...]"), starting with a letter, digit or "_", e.g. "ve-*"';

function globProblem(value: string): string | undefined {
  if (value.length === 0 || value.length > 64 || !GLOB_CHARS.test(value)) {
    return `is not a valid networkd Name= glob: ${ALLOWED}`;
  }
  if (value.startsWith("!")) {
    return (
      'starts with "!", which in networkd negates the whole Name= list: the file would then leave every ' +
      `other interface of the host unmanaged (its uplink too); ${ALLOWED}`
    );
  }
  if (/^[*?[]/.test(value)) {
    return (
      "starts with a wildcard, so it can match the host's own interfaces (eth0, the uplink), which networkd " +
      `would then stop configuring; ${ALLOWED}`
    );
  }
  if (!LITERAL_START.test(value)) {
    return `is not a valid networkd Name= glob: ${ALLOWED}`;
  }
  if (!/[*?[]/.test(value) && value.length > 15) {
    return `is longer than a Linux interface name can be (15 bytes) and has no wildcard, so it matches nothing; ${ALLOWED}`;
  }
  // An unclosed "[" is a literal in fnmatch but an error-prone spelling; refuse it rather than guess.
  const open = value.indexOf("[");
  if (open >= 0 && value.indexOf("]", open + 2) < 0) {
    return `has a "[" without a closing "]"; ${ALLOWED}`;
  }
  return undefined;
}

/** One networkd `[Match] Name=` glob (systemd.network(5)): an interface name or shell glob, e.g. `ve-*`. */
export function validateNetworkdGlob(value: unknown, property: string): Failure[] {
  if (isUnknown(value)) return [];
  if (typeof value !== "string") {
    return [{ property, message: `${property} must be a string, got ${display(value)}` }];
  }
  const problem = globProblem(value);
  return problem === undefined ? [] : [{ property, message: `${property} ${display(value)} ${problem}` }];
}

/**
 * Validates raw NetworkdUnmanaged inputs (`name` is the resource name). With an unknown input the known parts are
 * still validated and `spec` is undefined: the caller shows the content as unknown.
 */
export function parseNetworkdInputs(raw: Readonly<Record<string, unknown>>): Parsed<NetworkdSpec> {
  const failures = [
    ...validateResourceName(
      raw.name,
      "name",
      NETWORKD_NAME_MAX_LENGTH,
      "it becomes part of the .network file's name; give the resource a shorter name",
    ),
    ...validateList(raw.interfaces, "interfaces", validateNetworkdGlob, { optional: true }),
  ];
  if (Array.isArray(raw.interfaces) && raw.interfaces.length === 0) {
    failures.push({
      property: "interfaces",
      message:
        'interfaces is empty: list at least one interface name or glob (e.g. "ve-*"), or leave interfaces ' +
        'unset for the default ["ve-*", "vb-*"]',
    });
  }
  if (failures.length > 0 || containsUnknown(raw.name) || containsUnknown(raw.interfaces)) {
    return { failures };
  }
  // Valid and known: the casts restate what the validators just proved.
  const interfaces =
    raw.interfaces === undefined || raw.interfaces === null
      ? DEFAULT_NETWORKD_INTERFACES
      : (raw.interfaces as string[]);
  return { spec: { name: raw.name as string, interfaces: [...new Set(interfaces)] }, failures };
}

/**
 * The file's content: a `[Match]` on the globs and `Unmanaged=yes`, nothing else, so networkd neither addresses,
 * enslaves nor brings down the links it matches. The globs are one whitespace-separated `Name=` list (networkd
 * matches a link whose name or alternative name matches any of them).
 */
export function renderNetworkdFile(spec: NetworkdSpec): string {
  return (
    `# Managed by pulumi-nixos-containers (resource ${spec.name}): systemd-networkd leaves these links alone.\n` +
    "[Match]\n" +
    `Name=${spec.interfaces.join(" ")}\n` +
    "\n" +
    "[Link]\n" +
    "Unmanaged=yes\n"
  );
}

/** The NixOS declaration with the same effect, for hosts whose /etc/systemd/network cannot be written. */
export function nixosNetworkdDeclaration(spec: NetworkdSpec): string {
  return (
    `systemd.network.networks."10-pulumi-nixos-containers-${spec.name}" = ` +
    `{ matchConfig.Name = "${spec.interfaces.join(" ")}"; linkConfig.Unmanaged = true; };`
  );
}

// Input validators for every resource's `check`: each returns a list of failures (empty when valid) whose
// message names the property, shows the value received, says what is allowed and how to fix it.
// They run before any SSH, and they are the first line against hostile names reaching a remote command.

import { display } from "./display";
import { cidrProblem, ipv4Problem, tryParseIPv4 } from "./ipv4";
import { cidr6Problem, formatIPv6, ipv6Problem, specialIPv6Range, tryParseIPv6 } from "./ipv6";

/** One invalid input, in the shape Pulumi's `check` returns. */
/** What parsing raw inputs gives: the typed spec when every input is valid and known, and the failures. */
export interface Parsed<Spec> {
  readonly spec?: Spec;
  readonly failures: Failure[];
}

export interface Failure {
  readonly property: string;
  readonly message: string;
}

/**
 * The engine's placeholder for a value that is not known yet (an output of a resource not yet created),
 * as seen by a dynamic provider during preview. Validators accept it: the real value is checked on `up`.
 */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** True when `value` is the engine's unknown-value sentinel. */
export function isUnknown(value: unknown): boolean {
  return value === UNKNOWN;
}

/** True when the unknown sentinel appears anywhere inside `value` (a list item, an object field). */
export function containsUnknown(value: unknown): boolean {
  if (isUnknown(value)) {
    return true;
  }
  if (Array.isArray(value)) {
    return value.some(containsUnknown);
  }
  return typeof value === "object" && value !== null && Object.values(value).some(containsUnknown);
}

/** Options common to the single-value validators. */
export interface ValueOptions {
  /** Accept `undefined`/`null` (the input was not given). @default false: the value is required. */
  readonly optional?: boolean;
}

/** Options for interface names. */
export interface InterfaceNameOptions extends ValueOptions {
  /** Accept one trailing `+` (iptables) or `*` (nftables) wildcard, as in `ve-+`. @default false */
  readonly wildcard?: boolean;
}

/** Options for CIDR ranges. */
export interface CidrOptions extends ValueOptions {
  /** Require the address to be the network address ("10.233.0.0/16", not "10.233.1.0/16"). @default true */
  readonly requireNetwork?: boolean;
}

type Check = (value: string) => string | undefined;

/**
 * Shared skeleton: unknown passes, missing passes when optional, non-strings fail, strings go to `check`,
 * which returns the part of the message after "<property> <value> ".
 */
function validateString(value: unknown, property: string, options: ValueOptions, check: Check): Failure[] {
  if (isUnknown(value)) {
    return [];
  }
  if (value === undefined || value === null) {
    return options.optional ? [] : [{ property, message: `${property} is required` }];
  }
  if (typeof value !== "string") {
    return [{ property, message: `${property} must be a string, got ${display(value)}` }];
  }
  const problem = check(value);
  return problem === undefined ? [] : [{ property, message: `${property} ${display(value)} ${problem}` }];
}

const CONTAINER_NAME = /^[a-z][a-z0-9-]{0,10}$/;

function containerNameProblem(value: string): string | undefined {
  if (CONTAINER_NAME.test(value)) {
    return undefined;
  }
  const why =
    value.length > 11
      ? ` (it has ${value.length}): the host side of the veth is "ve-<name>" and Linux interface names ` +
        "must fit in 15 bytes, so nixos-container refuses longer names and long ones collide when truncated"
      : "";
  return `is not a valid container name: use 1-11 characters a-z, 0-9 and "-", starting with a letter${why}`;
}

/** A container name: `[a-z][a-z0-9-]{0,10}` (the nixos-container limit, so `ve-<name>` fits in IFNAMSIZ). */
export function validateContainerName(
  value: unknown,
  property = "name",
  options: ValueOptions = {},
): Failure[] {
  return validateString(value, property, options, containerNameProblem);
}

/** True when `value` is a valid container name (for code paths that only need a yes/no). */
export function isContainerName(value: string): boolean {
  return CONTAINER_NAME.test(value);
}

const IFNAME_CHARS = /^[A-Za-z0-9_.+-]+$/;

function interfaceNameProblem(value: string, wildcard: boolean): string | undefined {
  const allowed = wildcard
    ? 'use 1-15 characters A-Z, a-z, 0-9, "_", ".", "+", "-", not starting with "-", optionally ending in one wildcard "+" or "*" (e.g. "ve-+")'
    : 'use 1-15 characters A-Z, a-z, 0-9, "_", ".", "+", "-", not starting with "-" and not ending in "+"';
  const bytes = Buffer.byteLength(value, "utf8");
  if (bytes === 0 || bytes > 15) {
    return `is not a valid interface name: it is ${bytes} bytes long; Linux allows 1-15; ${allowed}`;
  }
  if (value === "." || value === "..") {
    return `is not a valid interface name: "." and ".." are reserved by the kernel; ${allowed}`;
  }
  const stem = wildcard && (value.endsWith("+") || value.endsWith("*")) ? value.slice(0, -1) : value;
  if (stem.length === 0) {
    return `is not a valid interface name: a bare wildcard would match every interface on the host; ${allowed}`;
  }
  // "+" inside a name is legal Linux, but a trailing one reads as an iptables wildcard: refuse the ambiguity.
  if (!IFNAME_CHARS.test(stem) || stem.startsWith("-") || stem.endsWith("+")) {
    return `is not a valid interface name: ${allowed}`;
  }
  return undefined;
}

/** An optional boolean (`persist`, `allowForward`, `autoStart`, ...). */
export function validateBoolean(value: unknown, property: string): Failure[] {
  return value !== undefined && value !== null && !isUnknown(value) && typeof value !== "boolean"
    ? [{ property, message: `${property} must be true or false, got ${display(value)}` }]
    : [];
}

/** A Linux interface name we create or match; wildcards only with `options.wildcard`. */
export function validateInterfaceName(
  value: unknown,
  property: string,
  options: InterfaceNameOptions = {},
): Failure[] {
  return validateString(value, property, options, (v) => interfaceNameProblem(v, options.wildcard ?? false));
}

/** A strict dotted-quad IPv4 address. */
export function validateIPv4(value: unknown, property: string, options: ValueOptions = {}): Failure[] {
  return validateString(value, property, options, (v) => {
    const problem = ipv4Problem(v);
    return problem === undefined ? undefined : `is not a valid IPv4 address: ${problem}`;
  });
}

/** An IPv4 CIDR range "a.b.c.d/n". */
export function validateCidr(value: unknown, property: string, options: CidrOptions = {}): Failure[] {
  return validateString(value, property, options, (v) => {
    const problem = cidrProblem(v, options.requireNetwork ?? true);
    return problem === undefined ? undefined : `is not a valid IPv4 CIDR: ${problem}`;
  });
}

/** A strict IPv6 address (RFC 4291 text; no zone id, brackets or IPv4-mapped form). */
export function validateIPv6(value: unknown, property: string, options: ValueOptions = {}): Failure[] {
  return validateString(value, property, options, (v) => {
    const problem = ipv6Problem(v);
    return problem === undefined ? undefined : `is not a valid IPv6 address: ${problem}`;
  });
}

/** An IPv6 CIDR range "address/n". */
export function validateCidr6(value: unknown, property: string, options: CidrOptions = {}): Failure[] {
  return validateString(value, property, options, (v) => {
    const problem = cidr6Problem(v, options.requireNetwork ?? true);
    return problem === undefined ? undefined : `is not a valid IPv6 CIDR: ${problem}`;
  });
}

/** Either a single IPv6 address or an IPv6 CIDR range (for `exclude` and `internalIPs`). */
export function validateAddressOrCidr6(
  value: unknown,
  property: string,
  options: CidrOptions = {},
): Failure[] {
  return validateString(value, property, options, (v) => {
    if (tryParseIPv6(v) !== undefined) {
      return undefined;
    }
    if (!v.includes("/")) {
      return `is not a valid IPv6 address: ${ipv6Problem(v)}`;
    }
    const problem = cidr6Problem(v, options.requireNetwork ?? true);
    return problem === undefined ? undefined : `is not a valid IPv6 CIDR: ${problem}`;
  });
}

/** Either a single IPv4 address or a CIDR range (for `exclude` and `internalIPs`). */
export function validateAddressOrCidr(
  value: unknown,
  property: string,
  options: CidrOptions = {},
): Failure[] {
  return validateString(value, property, options, (v) => {
    if (tryParseIPv4(v) !== undefined) {
      return undefined;
    }
    if (!v.includes("/")) {
      return 'is neither an IPv4 address nor a CIDR: use e.g. "10.233.5.2" or "10.233.5.0/24"';
    }
    const problem = cidrProblem(v, options.requireNetwork ?? true);
    return problem === undefined ? undefined : `is not a valid IPv4 CIDR: ${problem}`;
  });
}

const PORT_TEXT = /^[1-9][0-9]{0,4}$/;

function portNumber(value: unknown): number | undefined {
  if (typeof value === "number") {
    return Number.isInteger(value) && value >= 1 && value <= 65535 ? value : undefined;
  }
  if (typeof value === "string" && PORT_TEXT.test(value)) {
    const n = Number(value);
    return n <= 65535 ? n : undefined;
  }
  return undefined;
}

/** A value that must be present (unless optional or unknown) and pass `valid`; else `problem` says why. */
function validatePresent(
  value: unknown,
  property: string,
  options: ValueOptions,
  valid: (value: unknown) => boolean,
  problem: string,
): Failure[] {
  if (isUnknown(value) || ((value === undefined || value === null) && options.optional)) {
    return [];
  }
  if (value === undefined || value === null) {
    return [{ property, message: `${property} is required` }];
  }
  return valid(value) ? [] : [{ property, message: `${property} ${display(value)} ${problem}` }];
}

const PORT_PROBLEM = "is not a valid port: use a whole number from 1 to 65535";
const PORT_RANGE_PROBLEM =
  'is not a valid port or port range: use a port 1-65535 or "LOW:HIGH" / "LOW-HIGH" with LOW ≤ HIGH, e.g. "8000:8010"';

/** A TCP/UDP port 1-65535, as a number or a decimal string. */
export function validatePort(value: unknown, property: string, options: ValueOptions = {}): Failure[] {
  return validatePresent(value, property, options, (v) => portNumber(v) !== undefined, PORT_PROBLEM);
}

/** An inclusive port range. */
export interface PortRange {
  readonly low: number;
  readonly high: number;
}

/** Parses a port (8080) or a range ("8000:8010" or "8000-8010"); undefined when invalid or low > high. */
export function parsePortRange(value: unknown): PortRange | undefined {
  const single = portNumber(value);
  if (single !== undefined) {
    return { low: single, high: single };
  }
  if (typeof value !== "string") {
    return undefined;
  }
  const m = /^([1-9][0-9]{0,4})[:-]([1-9][0-9]{0,4})$/.exec(value);
  if (m === null) {
    return undefined;
  }
  const low = Number(m[1]);
  const high = Number(m[2]);
  return low <= high && high <= 65535 ? { low, high } : undefined;
}

/** A port or port range: 8080, "8080", "8000:8010" or "8000-8010", with low ≤ high. */
export function validatePortRange(value: unknown, property: string, options: ValueOptions = {}): Failure[] {
  return validatePresent(
    value,
    property,
    options,
    (v) => parsePortRange(v) !== undefined,
    PORT_RANGE_PROBLEM,
  );
}

/** One of a fixed set of words, e.g. a protocol, driver or backend. */
export function validateOneOf(
  value: unknown,
  property: string,
  allowed: readonly string[],
  options: ValueOptions = {},
): Failure[] {
  return validateString(value, property, options, (v) =>
    allowed.includes(v) ? undefined : `is not allowed: use one of ${allowed.map((a) => `"${a}"`).join(", ")}`,
  );
}

/** A transport protocol for port forwards: "tcp" or "udp". */
export function validateProtocol(value: unknown, property: string, options: ValueOptions = {}): Failure[] {
  return validateOneOf(value, property, ["tcp", "udp"], options);
}

const DNS_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

function hostProblem(value: string): string | undefined {
  const allowed =
    'use a DNS name (letters, digits, "-" and dots, e.g. "web1.example.com") or an IPv4 address';
  if (tryParseIPv4(value) !== undefined) {
    return undefined;
  }
  const name = value.endsWith(".") ? value.slice(0, -1) : value;
  if (name.length === 0 || name.length > 253) {
    return `is not a valid host: ${allowed}, at most 253 characters`;
  }
  const labels = name.split(".");
  if (!labels.every((label) => DNS_LABEL.test(label))) {
    return `is not a valid host: ${allowed}; labels are 1-63 characters and do not start or end with "-"`;
  }
  // An all-numeric last label is never a DNS name (RFC 3696); it is a mistyped address like "10.0.0.256".
  if (/^[0-9]+$/.test(labels[labels.length - 1])) {
    return `is not a valid host: it looks like an IPv4 address but is not one; ${allowed}`;
  }
  return undefined;
}

/** The SSH host: a DNS name or an IPv4 address, nothing a shell or ssh could read as an option. */
export function validateHost(
  value: unknown,
  property = "connection.host",
  options: ValueOptions = {},
): Failure[] {
  return validateString(value, property, options, hostProblem);
}

const HWADDR = /^[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}$|^[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){19}$/;
const IFNAME_GLOB = /^[A-Za-z0-9_.+*?-]+$/;
const S390_SUBCHANNEL = /^[0-9A-Fa-f]\.[0-9A-Fa-f]\.[0-9A-Fa-f]{4}$/;
const NM_TYPE = /^[a-z][a-z0-9_-]*$/;
const NM_DRIVER = /^[A-Za-z0-9_.*?-]+(?:\/[A-Za-z0-9_.+*?-]+)?$/;
const NM_FORMS =
  'use "*", an interface name, a MAC address, "interface-name:GLOB", "interface-name:~GLOB", ' +
  '"interface-name:=NAME", "mac:HWADDR", "s390-subchannels:0.0.NNNN", "type:TYPE", "driver:DRIVER[/VERSION]" ' +
  'or "except:" followed by one of the prefixed forms, e.g. "interface-name:ve-*"';

function ifnameGlobProblem(glob: string): boolean {
  // A glob matching a real interface has at most 15 characters besides "*", and never starts with "-".
  return !IFNAME_GLOB.test(glob) || glob.startsWith("-") || glob.replace(/\*/g, "").length > 15;
}

function nmTypedSpecOk(spec: string): boolean {
  const colon = spec.indexOf(":");
  if (colon < 0) {
    return false;
  }
  const kind = spec.slice(0, colon);
  const rest = spec.slice(colon + 1);
  switch (kind) {
    case "interface-name":
      if (rest.startsWith("=")) {
        return interfaceNameProblem(rest.slice(1), false) === undefined;
      }
      return !ifnameGlobProblem(rest.startsWith("~") ? rest.slice(1) : rest);
    case "mac":
      return HWADDR.test(rest);
    case "s390-subchannels":
      return S390_SUBCHANNEL.test(rest);
    case "type":
      return NM_TYPE.test(rest);
    case "driver":
      return NM_DRIVER.test(rest);
    default:
      return false;
  }
}

function nmDeviceSpecProblem(value: string): string | undefined {
  // NetworkManager splits lists on "," and ";", and the spec lands in a keyfile line: refuse anything that
  // could end the value, start another, or mean something to a shell, before looking at the form.
  if (/[,;\s"'`$\\#\0]/.test(value) || /[^\x20-\x7e]/.test(value)) {
    return `is not a valid NetworkManager device spec: it contains a separator, space, quote, "$", backtick or non-ASCII character; give one spec per list entry; ${NM_FORMS}`;
  }
  if (value === "*" || HWADDR.test(value) || nmTypedSpecOk(value)) {
    return undefined;
  }
  if (!value.includes(":")) {
    return interfaceNameProblem(value, false) === undefined
      ? undefined
      : `is not a valid NetworkManager device spec: a bare interface name takes no glob; ${NM_FORMS}`;
  }
  if (value.startsWith("except:")) {
    // NetworkManager requires the negated spec to carry a prefix; nested "except:" means nothing.
    const inner = value.slice("except:".length);
    if (!inner.startsWith("except:") && nmTypedSpecOk(inner)) {
      return undefined;
    }
  }
  return `is not a valid NetworkManager device spec: ${NM_FORMS}`;
}

/** One NetworkManager device spec (NetworkManager.conf(5) "Device List Format"), e.g. `interface-name:ve-*`. */
export function validateNmDeviceSpec(
  value: unknown,
  property: string,
  options: ValueOptions = {},
): Failure[] {
  return validateString(value, property, options, nmDeviceSpecProblem);
}

// Covers github:/gitlab:/sourcehut:, path:, git+https://…?ref=…&rev=…, tarball URLs, ".#attr" and "/abs#attr".
const FLAKE_REF = /^[A-Za-z0-9._~:/?#=&%+@,-]+$/;

function flakeRefProblem(value: string): string | undefined {
  const allowed =
    'use letters, digits and . _ ~ : / ? # = % + @ , - only (and "&" in a "?" query), not starting with "-", ' +
    "at most 1000 characters, " +
    'e.g. "github:me/containers#web"';
  // "&" only separates URL query parameters; before any "?" it can only be a pasted shell fragment.
  const query = value.indexOf("?");
  const beforeQuery = query < 0 ? value : value.slice(0, query);
  if (
    value.length === 0 ||
    value.length > 1000 ||
    !FLAKE_REF.test(value) ||
    value.startsWith("-") ||
    beforeQuery.includes("&")
  ) {
    return `is not a valid flake reference: ${allowed}`;
  }
  return undefined;
}

/** A Nix flake reference, optionally with `#attr`; no whitespace, quotes, `$` or backticks. */
export function validateFlakeRef(value: unknown, property = "flake", options: ValueOptions = {}): Failure[] {
  return validateString(value, property, options, flakeRefProblem);
}

function isGiven(value: unknown): boolean {
  return value !== undefined && value !== null && value !== "";
}

/**
 * Two inputs that only make sense together (hostAddress/localAddress, as nixos-container demands).
 * An unknown value counts as given. Returns one failure, on the property that is missing.
 */
export function bothOrNeither(
  inputs: Readonly<Record<string, unknown>>,
  first: string,
  second: string,
  prefix = "",
): Failure[] {
  const a = isGiven(inputs[first]);
  const b = isGiven(inputs[second]);
  if (a === b) {
    return [];
  }
  const [given, missing] = a ? [first, second] : [second, first];
  return [
    {
      property: prefix + missing,
      message: `${prefix}${missing} is missing while ${prefix}${given} is set: set both ${prefix}${first} and ${prefix}${second}, or neither`,
    },
  ];
}

/**
 * Validates a list input: it must be an array (or unknown, or absent when optional), and every element
 * is checked with `each` under the property "name[i]", so every offender is listed.
 */
export function validateList(
  value: unknown,
  property: string,
  each: (item: unknown, property: string) => Failure[],
  options: ValueOptions = {},
): Failure[] {
  if (isUnknown(value) || ((value === undefined || value === null) && options.optional)) {
    return [];
  }
  if (!Array.isArray(value)) {
    return [{ property, message: `${property} must be a list, got ${display(value)}` }];
  }
  return value.flatMap((item: unknown, i) => each(item, `${property}[${i}]`));
}

/**
 * The typed spec `build` makes, once `failures` is empty and none of `keys` is still unknown (preview before
 * a dependency exists); otherwise only the failures, and the caller shows what depends on the spec as unknown.
 */
export function specWhenKnown<Spec>(
  raw: Readonly<Record<string, unknown>>,
  keys: readonly string[],
  failures: Failure[],
  build: () => Spec,
): Parsed<Spec> {
  if (failures.length > 0 || keys.some((key) => containsUnknown(raw[key]))) return { failures };
  return { spec: build(), failures };
}

/** Optional text inputs: each key's string value, or undefined when it is absent or empty. */
export function optionalTexts<Key extends string>(
  raw: Readonly<Record<string, unknown>>,
  keys: readonly Key[],
): { [key in Key]?: string } {
  const texts: { [key in Key]?: string } = {};
  for (const key of keys) {
    const value = raw[key];
    if (typeof value === "string" && value !== "") texts[key] = value;
  }
  return texts;
}

/** Joins failures into one error message, one per line, for places that must throw (create, allocate). */
export function formatFailures(failures: readonly Failure[]): string {
  return failures.map((f) => f.message).join("\n");
}

/**
 * A resource id that names objects we own on a host (an nftables table, iptables chains, a drop-in file):
 * `[a-z][a-z0-9-]*`, at most `maxLength` characters. `why` explains where the length limit comes from.
 */
export function validateResourceName(
  value: unknown,
  property: string,
  maxLength: number,
  why: string,
  options: ValueOptions = {},
): Failure[] {
  return validateString(value, property, options, (v) =>
    /^[a-z][a-z0-9-]*$/.test(v) && v.length <= maxLength
      ? undefined
      : `is not a valid id: use 1-${maxLength} characters a-z, 0-9 and "-", starting with a letter` +
        (v.length > maxLength ? ` (it has ${v.length}): ${why}` : ""),
  );
}

/**
 * An address an interface can carry: a strict IPv4 that is not 0.0.0.0/8, loopback (127/8), link-local
 * (169.254/16), multicast or reserved (224/3). The kernel would refuse or misroute those at `up`; say so now.
 */
export function validateInterfaceAddress(
  value: unknown,
  property: string,
  options: ValueOptions = {},
): Failure[] {
  const basic = validateIPv4(value, property, options);
  if (basic.length > 0 || typeof value !== "string" || isUnknown(value)) return basic;
  const first = Number(value.split(".")[0]);
  const second = Number(value.split(".")[1]);
  const why =
    first === 0
      ? "0.0.0.0/8 means 'this network'"
      : first === 127
        ? "127.0.0.0/8 is loopback"
        : first === 169 && second === 254
          ? "169.254.0.0/16 is link-local"
          : first >= 224
            ? "224.0.0.0/3 is multicast or reserved"
            : undefined;
  return why === undefined
    ? []
    : [
        {
          property,
          message: `${property} ${display(value)} cannot be given to an interface: ${why}; use a private unicast address such as "10.233.1.2"`,
        },
      ];
}

/**
 * An interface address with an optional prefix length, as a bridged veth's container end takes it
 * (`192.168.50.5/24`; without a prefix it is a /32). Unknown or absent values pass.
 */
export function validateAddressWithPrefix(value: unknown, property: string): Failure[] {
  if (value === undefined || isUnknown(value)) return [];
  const [address, prefix, ...rest] = String(value).split("/");
  const failures = validateInterfaceAddress(address, property);
  if (
    typeof value !== "string" ||
    rest.length > 0 ||
    (prefix !== undefined && !/^(?:[0-9]|[12][0-9]|3[0-2])$/.test(prefix))
  ) {
    failures.push({
      property,
      message: `${property} ${display(value)} is invalid: use an IPv4 address, optionally with a prefix length 0-32 (e.g. "192.168.50.5/24")`,
    });
  }
  return failures;
}

/** An IPv6 address we can put on an interface: strict text, and not unspecified, loopback, link-local or multicast. */
export function validateInterfaceAddress6(
  value: unknown,
  property: string,
  options: ValueOptions = {},
): Failure[] {
  const basic = validateIPv6(value, property, options);
  if (basic.length > 0 || typeof value !== "string" || isUnknown(value)) return basic;
  const why = specialIPv6Range(tryParseIPv6(value) as bigint);
  return why === undefined
    ? []
    : [
        {
          property,
          message: `${property} ${display(value)} cannot be given to an interface: it is ${why}; use a unique local address such as "fd00:233:1::2"`,
        },
      ];
}

/** A bridged container's IPv6 address: an interface address, optionally with a prefix length 1-128. */
export function validateAddressWithPrefix6(value: unknown, property: string): Failure[] {
  if (value === undefined || isUnknown(value)) return [];
  const [address, prefix, ...rest] = String(value).split("/");
  const failures = validateInterfaceAddress6(address, property);
  if (
    typeof value !== "string" ||
    rest.length > 0 ||
    (prefix !== undefined && !/^(?:[1-9]|[1-9][0-9]|1[01][0-9]|12[0-8])$/.test(prefix))
  ) {
    failures.push({
      property,
      message: `${property} ${display(value)} is invalid: use an IPv6 address, optionally with a prefix length 1-128 (e.g. "2001:db8:50::5/64")`,
    });
  }
  return failures;
}

/** The canonical text (RFC 5952, as `ip -6` prints it) of a valid IPv6 address, keeping a "/prefix" suffix. */
export function canonicalIPv6(text: string): string {
  const [address, prefix] = text.split("/");
  const canonical = formatIPv6(tryParseIPv6(address) as bigint);
  return prefix === undefined ? canonical : `${canonical}/${prefix}`;
}

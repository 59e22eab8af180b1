// The typed, validated model of a NatRule (what NixOS's networking.nat describes), parsed once from raw
// inputs in `check`; the nftables and iptables renderers both work from it and never see raw values.

import { display } from "./display";
import { NAT_BACKENDS, NatBackend } from "./types";
import { tryParseIPv4 } from "./ipv4";
import {
  Cidr6,
  cidr6sOverlap,
  formatCidr6,
  formatIPv6,
  makeCidr6,
  specialIPv6Range,
  tryParseAddressOrCidr6,
  tryParseIPv6,
} from "./ipv6";
import {
  Failure,
  Parsed,
  containsUnknown,
  isUnknown,
  parsePortRange,
  validateAddressOrCidr,
  validateAddressOrCidr6,
  validateBoolean,
  validateInterfaceName,
  validateIPv4,
  validateIPv6,
  validateList,
  validateOneOf,
  validatePortRange,
  validateProtocol,
  validateResourceName,
} from "./validate";

/** An inclusive port range; `from === to` for a single port. */
export interface PortSpan {
  readonly from: number;
  readonly to: number;
}

/** One port forward from the external interface to an internal address (NixOS `forwardPorts` entry). */
export interface ForwardPort {
  readonly proto: "tcp" | "udp";
  readonly sourcePort: PortSpan;
  /** Where to send it; without `port` the destination port is the original one. */
  readonly destination: { readonly address: string; readonly port?: PortSpan };
}

/**
 * An interface to match. `wildcard` means "every interface whose name starts with `name`"; each backend
 * spells that its own way (nftables `"ve-*"`, iptables `ve-+`), which is why the model keeps it typed.
 */
export interface InterfaceMatch {
  readonly name: string;
  readonly wildcard: boolean;
}

/** How a NatRule treats IPv6: masqueraded (NAT66, for ULA ranges) or routed (forwarding on, no NAT). */
export const IPV6_MODES = ["nat66", "routed"] as const;
export type Ipv6Mode = (typeof IPV6_MODES)[number];

/**
 * The IPv6 half of a NatRule. `nat66`: like IPv4, in a table (or ip6tables chains) of its own: container
 * traffic from the internal interfaces and `internalIPv6s` leaves masqueraded (or SNATed to `externalIPv6`),
 * and the IPv6 port forwards are DNATed. `routed`: the containers' addresses are routed to the host, which only
 * forwards (no NAT, so no port forwards); `internalIPv6s` are the routed ranges (allowForward accepts them).
 * Addresses and ranges are in RFC 5952 canonical form, as `nft list` and `ip6tables-save` print them.
 */
export type Nat6Spec =
  | {
      readonly mode: "nat66";
      readonly internalIPv6s: readonly string[];
      readonly externalIPv6?: string;
      /** The forwards whose destination is IPv6 ("[fd00::2]:80"). */
      readonly forwardPorts: readonly ForwardPort[];
    }
  | { readonly mode: "routed"; readonly internalIPv6s: readonly string[] };

/** A validated NatRule. */
export interface NatSpec {
  /** The resource name; it names our nftables table and iptables chains. */
  readonly name: string;
  readonly backend: NatBackend;
  /** Interfaces whose traffic is masqueraded, in input order without duplicates. */
  readonly internalInterfaces: readonly InterfaceMatch[];
  /** Source addresses or CIDRs whose traffic is masqueraded, in input order without duplicates. */
  readonly internalIPs: readonly string[];
  readonly externalInterface: string;
  /** SNAT to this address instead of masquerading; also DNATs the host's own traffic to it. */
  readonly externalIP?: string;
  /** The IPv4 port forwards (IPv6 ones are in `ipv6`). */
  readonly forwardPorts: readonly ForwardPort[];
  /** IPv6: absent means the NatRule is IPv4 only (and renders exactly as before IPv6 existed). */
  readonly ipv6?: Nat6Spec;
  /**
   * Accept our traffic on the host's forward path (a chain of ours jumped to from the top of iptables'
   * FORWARD, or from DOCKER-USER when it exists), for hosts whose forwarding drops by default (Docker).
   */
  readonly allowForward: boolean;
  /**
   * Addresses on which the forwards also answer for the host itself and its containers (NixOS
   * `loopbackIPs`), with hairpin masquerading; an address in 127.0.0.0/8 also opens loopback forwards.
   */
  readonly loopbackIPs: readonly string[];
}

/** Whether an address is on the loopback network 127.0.0.0/8 (a forward there needs route_localnet). */
export function isLoopback(address: string): boolean {
  return address.startsWith("127.");
}

/** The addresses the port forwards lead to, each once, in input order. */
export function forwardDestinations(spec: Pick<NatSpec, "forwardPorts">): string[] {
  return [...new Set(spec.forwardPorts.map((f) => f.destination.address))];
}

/** One DNAT rule as both renderers emit it, after port forwards with shifted ranges are expanded. */
export interface DnatRule {
  readonly proto: "tcp" | "udp";
  readonly dport: PortSpan;
  readonly address: string;
  readonly port?: PortSpan;
}

/** Our objects are `pnc-nat-<id>` (nftables table) and `pnc-nat-<id>-pre|post|out` (iptables chains). */
export const NAT_NAME_PREFIX = "pnc-nat-";

/**
 * iptables chain names hold at most 28 characters (XT_EXTENSION_MAXNAMELEN 29 with the NUL), and the
 * longest of ours is "pnc-nat-<id>-post". The same limit applies to both backends, so switching backend
 * never turns a valid name invalid.
 */
export const NAT_NAME_MAX_LENGTH = 28 - NAT_NAME_PREFIX.length - "-post".length;

/**
 * A forward whose destination range is shifted against its source range ("9000-9010" → ":8000-8010")
 * is rendered as one rule per port: a DNAT to a port range keeps the original port only when it lies in
 * that range, and otherwise picks any port of the range, so a shifted range rule would scramble ports.
 */
export const MAX_SHIFTED_PORTS = 256;

const DEFAULT_INTERNAL_INTERFACES = ["ve-+"];
const FORWARD_KEYS = ["sourcePort", "destination", "proto"];
const DESTINATION = /^([0-9.]{7,15})(?::([0-9]{1,5})(?:-([0-9]{1,5}))?)?$/;
const DESTINATION6 = /^\[([0-9A-Fa-f:.]{2,45})\](?::([0-9]{1,5})(?:-([0-9]{1,5}))?)?$/;
const DESTINATION_FORMS =
  'use "ADDRESS", "ADDRESS:PORT" or "ADDRESS:LOW-HIGH" with a dotted-quad IPv4 address and ports 1-65535, ' +
  'LOW ≤ HIGH, e.g. "10.233.1.2:80"; an IPv6 address goes in brackets (with ipv6: "nat66"): ' +
  '"[fd00::2]", "[fd00::2]:80" or "[fd00::2]:8000-8010"';

/** Unique local addresses (RFC 4193): the ranges NAT66 is meant for. */
const ULA = makeCidr6(0xfcn << 120n, 7);
const LINK_LOCAL = makeCidr6(0xfe80n << 112n, 10);
const MULTICAST = makeCidr6(0xffn << 120n, 8);
const IPV4_MAPPED = makeCidr6(0xffffn << 32n, 96);

/** Number of ports in a span. */
function spanLength(span: PortSpan): number {
  return span.to - span.from + 1;
}

/** A span as "8080" or "8000<sep>8010" (nftables and iptables --to-destination use "-", --dport ":"). */
export function formatSpan(span: PortSpan, separator: "-" | ":"): string {
  return span.from === span.to ? String(span.from) : `${span.from}${separator}${span.to}`;
}

function toSpan(value: unknown): PortSpan | undefined {
  const range = parsePortRange(value);
  return range === undefined ? undefined : { from: range.low, to: range.high };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Whether an address of the model is IPv6 (the model keeps IPv4 dotted and IPv6 in canonical hex). */
export function isIPv6(address: string): boolean {
  return address.includes(":");
}

/**
 * Parses "10.233.1.2", "10.233.1.2:80", "10.233.1.2:8000-8010" or the same with "[IPV6]" (canonicalised);
 * undefined when invalid. An IPv6 destination must be an address a container can hold (not ::, ::1,
 * link-local, multicast or IPv4-mapped).
 */
function parseDestination(text: string): ForwardPort["destination"] | undefined {
  const m4 = DESTINATION.exec(text);
  const m6 = m4 === null ? DESTINATION6.exec(text) : null;
  const m = m4 ?? m6;
  if (m === null) {
    return undefined;
  }
  let address = m[1];
  if (m6 !== null) {
    const value = tryParseIPv6(m6[1]);
    if (value === undefined || specialIPv6Range(value) !== undefined) {
      return undefined;
    }
    address = formatIPv6(value);
  } else if (tryParseIPv4(address) === undefined) {
    return undefined;
  }
  if (m[2] === undefined) {
    return { address };
  }
  const port = toSpan(m[3] === undefined ? m[2] : `${m[2]}-${m[3]}`);
  return port === undefined ? undefined : { address, port };
}

/** Why an IPv6 destination text (in brackets) is refused, for a message more useful than the forms alone. */
function destination6Problem(text: string): string | undefined {
  const m = DESTINATION6.exec(text);
  if (m === null) {
    return tryParseIPv6(text) === undefined
      ? undefined
      : `an IPv6 address with a port is ambiguous without brackets: write "[${text}]" or "[${text}]:PORT"`;
  }
  const value = tryParseIPv6(m[1]);
  if (value === undefined) return undefined;
  const special = specialIPv6Range(value);
  return special === undefined
    ? undefined
    : `it is ${special}, which no container holds: forward to the container's address`;
}

function destinationFailures(value: unknown, property: string): Failure[] {
  if (isUnknown(value)) {
    return [];
  }
  if (value === undefined || value === null) {
    return [{ property, message: `${property} is required: ${DESTINATION_FORMS}` }];
  }
  if (typeof value !== "string" || parseDestination(value) === undefined) {
    const shown = typeof value === "string" ? display(value) : `must be a string, got ${display(value)}`;
    const why = typeof value === "string" ? destination6Problem(value) : undefined;
    return [
      {
        property,
        message: `${property} ${shown} is not a valid destination: ${why === undefined ? DESTINATION_FORMS : why}`,
      },
    ];
  }
  return [];
}

/** Checks that source and destination ports fit together; both are already valid. */
function portPairingFailures(
  source: PortSpan,
  destination: ForwardPort["destination"],
  rawSource: unknown,
  rawDestination: unknown,
  property: string,
): Failure[] {
  const port = destination.port;
  if (port === undefined || spanLength(port) === 1) {
    return [];
  }
  const dst = `${property}.destination ${display(rawDestination)}`;
  const src = `${property}.sourcePort ${display(rawSource)}`;
  const fail = (message: string): Failure[] => [{ property: `${property}.destination`, message }];
  if (spanLength(source) === 1) {
    return fail(
      `${dst} forwards to a port range but ${src} is a single port: ` +
        `give sourcePort a range of the same length (e.g. "${source.from}-${source.from + spanLength(port) - 1}"), or forward to one port`,
    );
  }
  if (spanLength(source) !== spanLength(port)) {
    return fail(
      `${dst} has ${spanLength(port)} ports but ${src} has ${spanLength(source)}: ` +
        "use port ranges of the same length, or forward to one port",
    );
  }
  if (source.from !== port.from && spanLength(port) > MAX_SHIFTED_PORTS) {
    return fail(
      `${dst} shifts ${spanLength(port)} ports against ${src}, which needs one rule per port; at most ${MAX_SHIFTED_PORTS} are allowed: ` +
        `use the same range on both sides (e.g. "${destination.address}:${formatSpan(source, "-")}"), which needs one rule`,
    );
  }
  return [];
}

function forwardPortFailures(item: unknown, property: string): Failure[] {
  if (isUnknown(item)) {
    return [];
  }
  if (!isRecord(item)) {
    return [
      {
        property,
        message: `${property} must be an object { sourcePort, destination, proto? }, got ${display(item)}`,
      },
    ];
  }
  const failures = Object.keys(item)
    .filter((key) => !FORWARD_KEYS.includes(key))
    .map((key) => ({
      property: `${property}.${key}`,
      message: `${property} has an unknown property ${display(key)}: use only sourcePort, destination and proto`,
    }));
  const own = [
    ...validatePortRange(item.sourcePort, `${property}.sourcePort`),
    ...destinationFailures(item.destination, `${property}.destination`),
    ...validateProtocol(item.proto, `${property}.proto`, { optional: true }),
  ];
  failures.push(...own);
  const source = toSpan(item.sourcePort);
  const destination = typeof item.destination === "string" ? parseDestination(item.destination) : undefined;
  if (source !== undefined && destination !== undefined) {
    failures.push(...portPairingFailures(source, destination, item.sourcePort, item.destination, property));
  }
  return failures;
}

/** Splits "ve-+" / "ve-*" into a typed wildcard; the name is already valid. */
function parseInterfaceMatch(text: string): InterfaceMatch {
  return text.endsWith("+") || text.endsWith("*")
    ? { name: text.slice(0, -1), wildcard: true }
    : { name: text, wildcard: false };
}

/** True when `match` would also match the interface called `name`. */
function interfaceMatches(match: InterfaceMatch, name: string): boolean {
  return match.wildcard ? name.startsWith(match.name) : name === match.name;
}

function overlapFailures(forwards: readonly { port: ForwardPort; raw: unknown }[]): Failure[] {
  const failures: Failure[] = [];
  forwards.forEach((b, j) => {
    const i = forwards.findIndex(
      (a, k) =>
        k < j &&
        a.port.proto === b.port.proto &&
        isIPv6(a.port.destination.address) === isIPv6(b.port.destination.address) &&
        a.port.sourcePort.from <= b.port.sourcePort.to &&
        b.port.sourcePort.from <= a.port.sourcePort.to,
    );
    if (i >= 0) {
      const property = `forwardPorts[${j}].sourcePort`;
      failures.push({
        property,
        message:
          `${property} ${display(b.raw)} (${b.port.proto}${isIPv6(b.port.destination.address) ? ", IPv6" : ""}) overlaps forwardPorts[${i}].sourcePort ${display(forwards[i].raw)}: ` +
          "an external port can forward to one destination only; remove one forward or make the ranges disjoint",
      });
    }
  });
  return failures;
}

function unique<T>(items: readonly T[], key: (item: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((item) => {
    const k = key(item);
    if (seen.has(k)) {
      return false;
    }
    seen.add(k);
    return true;
  });
}

function stringList(value: unknown, fallback: readonly string[]): readonly string[] {
  return value === undefined || value === null ? fallback : (value as readonly string[]);
}

/**
 * Validates raw NatRule inputs (NixOS option names; `name` is the resource name) and returns the typed
 * spec. Every offender is listed. When any input is still unknown (preview before a dependency exists)
 * the known parts are validated and `spec` is undefined: the caller shows the ruleset as unknown.
 */
export function parseNatInputs(raw: Readonly<Record<string, unknown>>): Parsed<NatSpec> {
  const nameWhy =
    `our iptables chains are "${NAT_NAME_PREFIX}<name>-post" and iptables allows 28 characters in a chain name; ` +
    "give the resource a shorter name";
  const failures: Failure[] = [
    ...validateResourceName(raw.name, "name", NAT_NAME_MAX_LENGTH, nameWhy),
    ...validateOneOf(raw.backend, "backend", NAT_BACKENDS, { optional: true }),
    ...validateList(
      raw.internalInterfaces,
      "internalInterfaces",
      (item, property) => validateInterfaceName(item, property, { wildcard: true }),
      { optional: true },
    ),
    ...validateList(
      raw.internalIPs,
      "internalIPs",
      (item, property) => validateAddressOrCidr(item, property),
      {
        optional: true,
      },
    ),
    ...validateInterfaceName(raw.externalInterface, "externalInterface"),
    ...validateIPv4(raw.externalIP, "externalIP", { optional: true }),
    ...validateList(raw.forwardPorts, "forwardPorts", forwardPortFailures, { optional: true }),
    ...validateBoolean(raw.allowForward, "allowForward"),
    ...validateList(raw.loopbackIPs, "loopbackIPs", (item, property) => validateIPv4(item, property), {
      optional: true,
    }),
    ...validateOneOf(raw.ipv6, "ipv6", IPV6_MODES, { optional: true }),
    ...validateList(
      raw.internalIPv6s,
      "internalIPv6s",
      (item, property) => validateAddressOrCidr6(item, property),
      { optional: true },
    ),
    ...validateIPv6(raw.externalIPv6, "externalIPv6", { optional: true }),
  ];
  const fields = [
    raw.name,
    raw.backend,
    raw.internalInterfaces,
    raw.internalIPs,
    raw.externalInterface,
    raw.externalIP,
    raw.forwardPorts,
    raw.allowForward,
    raw.loopbackIPs,
    raw.ipv6,
    raw.internalIPv6s,
    raw.externalIPv6,
  ];
  if (failures.length > 0 || fields.some(containsUnknown)) {
    return { failures };
  }

  // Everything below is valid and known; these casts only restate what the validators just proved.
  const externalInterface = raw.externalInterface as string;
  const rawInterfaces = stringList(raw.internalInterfaces, DEFAULT_INTERNAL_INTERFACES);
  rawInterfaces.forEach((text, i) => {
    if (interfaceMatches(parseInterfaceMatch(text), externalInterface)) {
      const property = `internalInterfaces[${i}]`;
      failures.push({
        property,
        message:
          `${property} ${display(text)} matches externalInterface ${display(externalInterface)}: ` +
          "traffic would be masqueraded back out of the interface it came in on; remove it, or name the internal interfaces more precisely",
      });
    }
  });
  const rawForwards = (raw.forwardPorts ?? []) as readonly Record<string, unknown>[];
  const forwards = rawForwards.map((item) => ({
    raw: item.sourcePort,
    port: {
      proto: (item.proto ?? "tcp") as ForwardPort["proto"],
      sourcePort: toSpan(item.sourcePort) as PortSpan,
      destination: parseDestination(item.destination as string) as ForwardPort["destination"],
    },
  }));
  failures.push(...overlapFailures(forwards));
  const mode = (raw.ipv6 ?? undefined) as Ipv6Mode | undefined;
  const ranges6 = stringList(raw.internalIPv6s, []);
  const externalIPv6 = (raw.externalIPv6 ?? undefined) as string | undefined;
  failures.push(...ipv6Failures(mode, ranges6, externalIPv6, rawForwards, forwards));
  if (failures.length > 0) {
    return { failures };
  }
  const forwards4 = forwards.filter((f) => !isIPv6(f.port.destination.address)).map((f) => f.port);
  const forwards6 = forwards.filter((f) => isIPv6(f.port.destination.address)).map((f) => f.port);
  const internalIPv6s = unique(ranges6.map(canonicalRange6), (r) => r);
  const ipv6: Nat6Spec | undefined =
    mode === "nat66"
      ? {
          mode,
          internalIPv6s,
          ...(externalIPv6 === undefined
            ? {}
            : { externalIPv6: formatIPv6(tryParseIPv6(externalIPv6) as bigint) }),
          forwardPorts: forwards6,
        }
      : mode === "routed"
        ? { mode, internalIPv6s }
        : undefined;

  const spec: NatSpec = {
    name: raw.name as string,
    backend: (raw.backend ?? "nftables") as NatBackend,
    internalInterfaces: unique(rawInterfaces.map(parseInterfaceMatch), (m) => `${m.name}\0${m.wildcard}`),
    internalIPs: unique(stringList(raw.internalIPs, []), (s) => s),
    externalInterface,
    ...(raw.externalIP === undefined || raw.externalIP === null
      ? {}
      : { externalIP: raw.externalIP as string }),
    forwardPorts: forwards4,
    allowForward: raw.allowForward === true,
    loopbackIPs: unique(stringList(raw.loopbackIPs, []), (s) => s),
    ...(ipv6 === undefined ? {} : { ipv6 }),
  };
  return { spec, failures };
}

/** An internal IPv6 address or range in canonical form: "fd00::5" stays an address, ranges become "base/n". */
function canonicalRange6(text: string): string {
  const range = tryParseAddressOrCidr6(text) as Cidr6;
  return text.includes("/") ? formatCidr6(range) : formatIPv6(range.base);
}

/**
 * The IPv6 inputs against the mode (all are valid on their own): what each mode cannot do is refused with
 * the mode that can. NAT66 is for unique local ranges (fc00::/7): a global range is routable and needs no
 * translation (routed mode), and translating it would hide the containers' own addresses.
 */
function ipv6Failures(
  mode: Ipv6Mode | undefined,
  ranges: readonly string[],
  externalIPv6: string | undefined,
  rawForwards: readonly Record<string, unknown>[],
  forwards: readonly { port: ForwardPort }[],
): Failure[] {
  const failures: Failure[] = [];
  const v6Forwards = forwards.map((f, i) => ({ f, i })).filter(({ f }) => isIPv6(f.port.destination.address));
  if (mode === undefined) {
    const enable = 'set ipv6: "nat66" (masquerade, like IPv4) or "routed" (forwarding only)';
    if (ranges.length > 0) {
      failures.push({
        property: "internalIPv6s",
        message: `internalIPv6s ${display(ranges)} needs IPv6 on this NatRule: ${enable}, or remove internalIPv6s`,
      });
    }
    if (externalIPv6 !== undefined) {
      failures.push({
        property: "externalIPv6",
        message: `externalIPv6 ${display(externalIPv6)} needs NAT66 on this NatRule: set ipv6: "nat66", or remove externalIPv6`,
      });
    }
    for (const { i } of v6Forwards) {
      const property = `forwardPorts[${i}].destination`;
      failures.push({
        property,
        message: `${property} ${display(rawForwards[i].destination)} is IPv6, which needs NAT66 on this NatRule: set ipv6: "nat66"`,
      });
    }
    return failures;
  }
  ranges.forEach((text, i) => {
    const property = `internalIPv6s[${i}]`;
    const range = tryParseAddressOrCidr6(text) as Cidr6;
    const reserved = [
      { cidr: LINK_LOCAL, what: "link-local fe80::/10 (never forwarded)" },
      { cidr: MULTICAST, what: "multicast ff00::/8" },
      { cidr: IPV4_MAPPED, what: "IPv4-mapped ::ffff:0:0/96 (IPv4 traffic: use internalIPs)" },
      { cidr: makeCidr6(0n, 127), what: "the unspecified and loopback addresses ::/127" },
    ].find((r) => cidr6sOverlap(r.cidr, range));
    if (reserved !== undefined) {
      failures.push({
        property,
        message: `${property} ${display(text)} covers ${reserved.what}: give the containers' own range, e.g. "fd00:1234::/48"`,
      });
    } else if (mode === "nat66" && !(range.base >= ULA.base && range.last <= ULA.last)) {
      failures.push({
        property,
        message:
          `${property} ${display(text)} is not a unique local range (inside fc00::/7): NAT66 is meant for ULA ranges such as "fd00:1234::/48"; ` +
          'a global range routed to the host needs no translation: use ipv6: "routed", or give the containers ULA addresses',
      });
    }
  });
  if (mode === "routed") {
    if (externalIPv6 !== undefined) {
      failures.push({
        property: "externalIPv6",
        message: `externalIPv6 ${display(externalIPv6)} is a SNAT address, but ipv6 is "routed", which translates nothing: remove externalIPv6, or use ipv6: "nat66"`,
      });
    }
    for (const { f, i } of v6Forwards) {
      const property = `forwardPorts[${i}].destination`;
      failures.push({
        property,
        message:
          `${property} ${display(rawForwards[i].destination)} is IPv6, but ipv6 is "routed": a port forward is a DNAT, and routed containers ` +
          `are reached at their own address ([${f.port.destination.address}]:PORT, opened in the host's forward path); remove this forward, or use ipv6: "nat66"`,
      });
    }
  }
  if (externalIPv6 !== undefined) {
    const special = specialIPv6Range(tryParseIPv6(externalIPv6) as bigint);
    if (special !== undefined) {
      failures.push({
        property: "externalIPv6",
        message: `externalIPv6 ${display(externalIPv6)} is ${special}: SNAT to an address of the external interface, or leave externalIPv6 out to masquerade`,
      });
    }
  }
  return failures;
}

/**
 * The DNAT rules for the spec's port forwards, in input order. A forward between equal ranges (or to
 * one port, or keeping the port) is one rule; a shifted range becomes one rule per port (see
 * MAX_SHIFTED_PORTS for why).
 */
export function dnatRules(spec: Pick<NatSpec, "forwardPorts">): DnatRule[] {
  return spec.forwardPorts.flatMap((f): DnatRule[] => {
    const { address, port } = f.destination;
    const shifted = port !== undefined && spanLength(port) > 1 && port.from !== f.sourcePort.from;
    if (!shifted) {
      return [{ proto: f.proto, dport: f.sourcePort, address, ...(port === undefined ? {} : { port }) }];
    }
    return Array.from({ length: spanLength(port) }, (_, k) => ({
      proto: f.proto,
      dport: { from: f.sourcePort.from + k, to: f.sourcePort.from + k },
      address,
      port: { from: port.from + k, to: port.from + k },
    }));
  });
}

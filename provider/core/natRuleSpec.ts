// The typed, validated model of a NatRule (what NixOS's networking.nat describes), parsed once from raw
// inputs in `check`; the nftables and iptables renderers both work from it and never see raw values.

import { display } from "./display";
import { NAT_BACKENDS, NatBackend } from "./types";
import { tryParseIPv4 } from "./ipv4";
import {
  Failure,
  Parsed,
  containsUnknown,
  isUnknown,
  parsePortRange,
  validateAddressOrCidr,
  validateBoolean,
  validateInterfaceName,
  validateIPv4,
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
  readonly forwardPorts: readonly ForwardPort[];
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
const DESTINATION_FORMS =
  'use "ADDRESS", "ADDRESS:PORT" or "ADDRESS:LOW-HIGH" with a dotted-quad IPv4 address and ports 1-65535, ' +
  'LOW ≤ HIGH, e.g. "10.233.1.2:80"';

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

/** Parses "10.233.1.2", "10.233.1.2:80" or "10.233.1.2:8000-8010"; undefined when invalid. */
function parseDestination(text: string): ForwardPort["destination"] | undefined {
  const m = DESTINATION.exec(text);
  if (m === null || tryParseIPv4(m[1]) === undefined) {
    return undefined;
  }
  if (m[2] === undefined) {
    return { address: m[1] };
  }
  const port = toSpan(m[3] === undefined ? m[2] : `${m[2]}-${m[3]}`);
  return port === undefined ? undefined : { address: m[1], port };
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
    return [{ property, message: `${property} ${shown} is not a valid destination: ${DESTINATION_FORMS}` }];
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
        a.port.sourcePort.from <= b.port.sourcePort.to &&
        b.port.sourcePort.from <= a.port.sourcePort.to,
    );
    if (i >= 0) {
      const property = `forwardPorts[${j}].sourcePort`;
      failures.push({
        property,
        message:
          `${property} ${display(b.raw)} (${b.port.proto}) overlaps forwardPorts[${i}].sourcePort ${display(forwards[i].raw)}: ` +
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
  if (failures.length > 0) {
    return { failures };
  }

  const spec: NatSpec = {
    name: raw.name as string,
    backend: (raw.backend ?? "nftables") as NatBackend,
    internalInterfaces: unique(rawInterfaces.map(parseInterfaceMatch), (m) => `${m.name}\0${m.wildcard}`),
    internalIPs: unique(stringList(raw.internalIPs, []), (s) => s),
    externalInterface,
    ...(raw.externalIP === undefined || raw.externalIP === null
      ? {}
      : { externalIP: raw.externalIP as string }),
    forwardPorts: forwards.map((f) => f.port),
    allowForward: raw.allowForward === true,
    loopbackIPs: unique(stringList(raw.loopbackIPs, []), (s) => s),
  };
  return { spec, failures };
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

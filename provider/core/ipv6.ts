// IPv6 addresses and CIDR ranges as unsigned 128-bit bigints: strict parsing, RFC 5952 formatting, range math.
// Hand-written like ipv4.ts rather than ipaddr.js: that library accepts zone ids, IPv4-mapped forms and
// other text we must refuse, so it would need the same checks around it, and we want one reason per refusal.

import { display } from "./display";
import { tryParseIPv4 } from "./ipv4";

/** A parsed IPv6 CIDR range. `base` is the network address; `last` the highest address in the range. */
export interface Cidr6 {
  readonly base: bigint;
  readonly prefixLength: number;
  readonly last: bigint;
}

/** 2^128 - 1, the highest IPv6 address. */
export const MAX_IPV6 = (1n << 128n) - 1n;

// "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
const MAX_TEXT = 45;
const HOW =
  'use up to eight groups of 1-4 hex digits separated by ":", with "::" once for a run of zero groups, e.g. "fd12:3456:789a:1::2"';
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;
const ALLOWED_CHARS = /^[0-9a-fA-F:.]*$/;

/** The value of `text`, or the reason it is not a strict IPv6 address (the part after "is not a valid …: "). */
function parse(text: string): bigint | string {
  if (text.length === 0) {
    return HOW;
  }
  if (/\s/.test(text)) {
    return `remove the spaces and line breaks; ${HOW}`;
  }
  if (text.startsWith("[") || text.endsWith("]")) {
    return `remove the brackets: they belong only around an address followed by a port, as in URLs; ${HOW}`;
  }
  if (text.includes("%")) {
    return 'zone ids such as "%eth0" are not allowed: give the address alone (the interface is set by its own input)';
  }
  if (text.includes("/")) {
    return "a prefix length is not allowed here: give the address alone";
  }
  if (text.length > MAX_TEXT || !ALLOWED_CHARS.test(text)) {
    return HOW;
  }
  if (text.includes(":::")) {
    return `three colons in a row are not allowed; ${HOW}`;
  }
  const gap = text.indexOf("::");
  if (gap >= 0 && text.indexOf("::", gap + 1) >= 0) {
    return `"::" may appear only once (it stands for one run of zero groups); ${HOW}`;
  }
  const head = gap >= 0 ? text.slice(0, gap) : text;
  const tail = gap >= 0 ? text.slice(gap + 2) : "";
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = tail === "" ? [] : tail.split(":");
  if (headGroups.includes("") || tailGroups.includes("")) {
    return `a single ":" cannot start or end the address, and no group may be empty; ${HOW}`;
  }
  // Only the very last group of the text may be a dotted IPv4 part (RFC 4291 2.2, form 3).
  const lastGroups = gap >= 0 ? tailGroups : headGroups;
  const all = [...headGroups, ...tailGroups];
  let ipv4Tail: number | undefined;
  if (lastGroups.length > 0 && lastGroups[lastGroups.length - 1].includes(".")) {
    const dotted = lastGroups[lastGroups.length - 1];
    ipv4Tail = tryParseIPv4(dotted);
    if (ipv4Tail === undefined) {
      return `the dotted IPv4 part ${display(dotted)} must be four decimal numbers 0-255 without leading zeros, e.g. "64:ff9b::192.0.2.1"`;
    }
    all.pop();
  }
  for (const group of all) {
    if (group.includes(".")) {
      return 'a dotted IPv4 part is allowed only as the last 32 bits, e.g. "64:ff9b::192.0.2.1"';
    }
    if (!HEX_GROUP.test(group)) {
      return `the group ${display(group)} has more than 4 hex digits; ${HOW}`;
    }
  }
  const groupCount = all.length + (ipv4Tail === undefined ? 0 : 2);
  if (gap < 0 && groupCount !== 8) {
    return `it has ${groupCount} groups, and without "::" it needs exactly 8; ${HOW}`;
  }
  if (gap >= 0 && groupCount > 7) {
    return `it has ${groupCount} groups besides "::", which must stand for at least one zero group, so at most 7 are allowed`;
  }
  let value = 0n;
  const push = (groups: readonly string[]) => {
    for (const g of groups) value = (value << 16n) | BigInt(parseInt(g, 16));
  };
  const tailHex = gap >= 0 ? tailGroups.slice(0, tailGroups.length - (ipv4Tail === undefined ? 0 : 1)) : [];
  const headHex = gap >= 0 ? headGroups : all;
  push(headHex);
  if (gap >= 0) {
    value <<= 16n * BigInt(8 - groupCount);
    push(tailHex);
  }
  if (ipv4Tail !== undefined) {
    value = (value << 32n) | BigInt(ipv4Tail);
  }
  return refusedRange(value, ipv4Tail !== undefined) ?? value;
}

/**
 * Addresses that are valid text but meaningless for an interface, a pool or a rule of ours. Refusing them in
 * the parser also keeps formatIPv6 identical to glibc's inet_ntop (what `ip -6` prints) for every accepted
 * value: those are exactly the two ranges inet_ntop prints with a dotted tail.
 */
function refusedRange(value: bigint, dottedTail: boolean): string | undefined {
  const top96 = value >> 32n;
  const v4 = () => formatDotted(Number(value & 0xffffffffn));
  if (top96 === 0xffffn) {
    return `IPv4-mapped addresses (::ffff:a.b.c.d) only stand for IPv4 peers inside sockets and cannot be used as IPv6 here: use the IPv4 address "${v4()}" in the IPv4 input instead`;
  }
  if (top96 === 0n && (dottedTail || value >> 16n !== 0n)) {
    return `IPv4-compatible addresses (::a.b.c.d) are deprecated (RFC 4291 2.5.5.1) and not routed: use the IPv4 address "${v4()}" in the IPv4 input, or a real IPv6 address`;
  }
  return undefined;
}

function formatDotted(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/**
 * Parses strict RFC 4291 text ("fd12:3456:789a:1::2", hex in either case, "::" once, a dotted IPv4 tail
 * only as the last 32 bits) into a bigint, or returns undefined. Refuses zone ids ("%eth0"), brackets,
 * whitespace, a prefix length, more than 4 hex digits in a group, IPv4-mapped (::ffff:0:0/96) and
 * IPv4-compatible (::/96 except :: and ::1…::ffff) addresses; ipv6Problem says which.
 */
export function tryParseIPv6(text: string): bigint | undefined {
  const result = typeof text === "string" ? parse(text) : HOW;
  return typeof result === "bigint" ? result : undefined;
}

/** Explains why `text` is not a strict IPv6 address, or returns undefined when it is one. */
export function ipv6Problem(text: string): string | undefined {
  const result = typeof text === "string" ? parse(text) : HOW;
  return typeof result === "string" ? result : undefined;
}

/** Parses a strict IPv6 address or throws an error naming `property` and the value received. */
export function parseIPv6(text: string, property = "address"): bigint {
  const result = parse(text);
  if (typeof result === "string") {
    throw new Error(`${property} ${display(text)} is not a valid IPv6 address: ${result}`);
  }
  return result;
}

/**
 * Formats a 128-bit value as RFC 5952 canonical text: lowercase, no leading zeros, the longest run of two or
 * more zero groups as "::" (the first on a tie), never "::" for a single group. Always pure hex (no dotted
 * tail); for every value tryParseIPv6 accepts this equals what glibc's inet_ntop, and so `ip -6`, prints.
 */
export function formatIPv6(value: bigint): string {
  if (value < 0n || value > MAX_IPV6) {
    throw new RangeError(`formatIPv6: ${value} is not a 128-bit unsigned value`);
  }
  const groups: number[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) {
    groups.push(Number((value >> shift) & 0xffffn));
  }
  let bestStart = -1;
  let bestLength = 1; // a run must be at least 2 groups to be compressed
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) {
    return hex.join(":");
  }
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

/** The netmask of a prefix length 0-128 as a bigint. */
export function prefixMask6(prefixLength: number): bigint {
  return MAX_IPV6 ^ ((1n << BigInt(128 - prefixLength)) - 1n);
}

/** The range of `prefixLength` starting at `base` (which must be the network address). */
export function makeCidr6(base: bigint, prefixLength: number): Cidr6 {
  return { base, prefixLength, last: base + (1n << BigInt(128 - prefixLength)) - 1n };
}

function splitCidr6(text: string): { address: bigint; prefixLength: number } | string {
  if (typeof text !== "string") {
    return 'use "address/n" with n from 0 to 128, e.g. "fd12:3456:789a::/48"';
  }
  const slash = text.indexOf("/");
  if (slash < 0) {
    return 'add a prefix length, e.g. "fd12:3456:789a::/48"';
  }
  const addressText = text.slice(0, slash);
  const address = parse(addressText);
  if (typeof address === "string") {
    return `the address before / is invalid: ${address}`;
  }
  const prefixText = text.slice(slash + 1);
  if (!/^(?:[0-9]|[1-9][0-9]|1[01][0-9]|12[0-8])$/.test(prefixText)) {
    return "the prefix length after / must be a whole number from 0 to 128, without leading zeros";
  }
  return { address, prefixLength: Number(prefixText) };
}

/**
 * Explains why `text` is not an IPv6 CIDR ("fd12:3456:789a::/48"), or returns undefined when it is one.
 * With `requireNetwork` (the default) the address must be the network address, so a typo is refused with
 * the fix spelled out rather than silently widened.
 */
export function cidr6Problem(text: string, requireNetwork = true): string | undefined {
  const parts = splitCidr6(text);
  if (typeof parts === "string") {
    return parts;
  }
  const base = parts.address & prefixMask6(parts.prefixLength);
  if (requireNetwork && base !== parts.address) {
    const fixed = `${formatIPv6(base)}/${parts.prefixLength}`;
    return `host bits are set: the network address of /${parts.prefixLength} is ${formatIPv6(base)}, use "${fixed}"`;
  }
  return undefined;
}

/**
 * Parses "address/n". With `requireNetwork` (the default) the address must be the network address and
 * undefined is returned otherwise; without it host bits are cleared ("fd00::5/64" → fd00::/64).
 */
export function tryParseCidr6(text: string, requireNetwork = true): Cidr6 | undefined {
  const parts = splitCidr6(text);
  if (typeof parts === "string") {
    return undefined;
  }
  const base = parts.address & prefixMask6(parts.prefixLength);
  if (requireNetwork && base !== parts.address) {
    return undefined;
  }
  return makeCidr6(base, parts.prefixLength);
}

/** Parses a strict IPv6 CIDR (network address required) or throws an error naming `property`. */
export function parseCidr6(text: string, property = "cidr6"): Cidr6 {
  const cidr = tryParseCidr6(text, true);
  if (cidr === undefined) {
    throw new Error(`${property} ${display(text)} is not a valid IPv6 CIDR: ${cidr6Problem(text, true)}`);
  }
  return cidr;
}

/** Parses either a single IPv6 address (as a /128) or a strict IPv6 CIDR; undefined when it is neither. */
export function tryParseAddressOrCidr6(text: string): Cidr6 | undefined {
  const address = tryParseIPv6(text);
  return address !== undefined ? makeCidr6(address, 128) : tryParseCidr6(text, true);
}

/** Formats a range as canonical "address/n". */
export function formatCidr6(cidr: Cidr6): string {
  return `${formatIPv6(cidr.base)}/${cidr.prefixLength}`;
}

/** True when `address` lies inside `cidr`. */
export function cidr6Contains(cidr: Cidr6, address: bigint): boolean {
  return address >= cidr.base && address <= cidr.last;
}

/** True when every address of `inner` lies inside `outer`. */
export function cidr6ContainsCidr6(outer: Cidr6, inner: Cidr6): boolean {
  return inner.base >= outer.base && inner.last <= outer.last;
}

/** True when the two ranges share at least one address. */
export function cidr6sOverlap(a: Cidr6, b: Cidr6): boolean {
  return a.base <= b.last && b.base <= a.last;
}

/** True when `text` looks like it was meant as IPv6 (has a ":"), to pick the family for a message. */
export function looksLikeIPv6(text: string): boolean {
  return typeof text === "string" && text.includes(":");
}

const SPECIAL_RANGES: readonly { cidr: Cidr6; what: string }[] = [
  { cidr: makeCidr6(0n, 128), what: "the unspecified address ::" },
  { cidr: makeCidr6(1n, 128), what: "the loopback address ::1" },
  { cidr: makeCidr6(0xfe80n << 112n, 10), what: "link-local (fe80::/10; the kernel adds those itself)" },
  { cidr: makeCidr6(0xffn << 120n, 8), what: "multicast (ff00::/8)" },
];

/**
 * Why an address cannot be put on an interface of ours (unspecified, loopback, link-local, multicast), or
 * undefined when it can. For validators of host/container addresses, beside validateInterfaceAddress.
 */
export function specialIPv6Range(value: bigint): string | undefined {
  return SPECIAL_RANGES.find((r) => cidr6Contains(r.cidr, value))?.what;
}

// IPv4 addresses and CIDR ranges as unsigned 32-bit integers: strict parsing, formatting and range math.
// Pure and allocation-free on the hot path, because the allocator converts tens of thousands of addresses.

import { display } from "./display";

/** A parsed CIDR range. `base` is the network address; `last` the highest address in the range. */
export interface Cidr {
  readonly base: number;
  readonly prefixLength: number;
  /** Number of addresses in the range (up to 2^32, so a plain number, not a uint32). */
  readonly size: number;
  readonly last: number;
}

const MAX_TEXT = 18; // "255.255.255.255/32"

/**
 * Parses a strict dotted quad ("10.233.1.2") into a uint32, or returns undefined.
 * Rejects leading zeros ("010.1.1.1" means 8.1.1.1 to inet_aton), fewer than four parts ("10.1" is
 * 10.0.0.1 to inet_aton), hex, whitespace and anything else that a C library would read differently.
 */
export function tryParseIPv4(text: string): number | undefined {
  if (text.length < 7 || text.length > 15) {
    return undefined;
  }
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits === 1 && octet === 0) {
        return undefined; // leading zero
      }
      octet = octet * 10 + (c - 48);
      digits++;
      if (octet > 255) {
        return undefined;
      }
    } else if (c === 46) {
      if (digits === 0 || dots === 3) {
        return undefined;
      }
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else {
      return undefined;
    }
  }
  if (dots !== 3 || digits === 0) {
    return undefined;
  }
  return value * 256 + octet;
}

/** Explains why `text` is not a strict dotted quad, or returns undefined when it is one. */
export function ipv4Problem(text: string): string | undefined {
  if (tryParseIPv4(text) !== undefined) {
    return undefined;
  }
  return 'use four decimal numbers 0-255 separated by dots, without leading zeros or spaces, e.g. "10.233.1.2"';
}

/** Parses a strict dotted quad or throws an error naming `property` and the value received. */
export function parseIPv4(text: string, property = "address"): number {
  const value = tryParseIPv4(text);
  if (value === undefined) {
    throw new Error(`${property} ${display(text)} is not a valid IPv4 address: ${ipv4Problem(text)}`);
  }
  return value;
}

/** Formats a uint32 as a dotted quad. */
export function formatIPv4(value: number): string {
  const v = value >>> 0;
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** The netmask of a prefix length as a uint32 (`<< 32` is a no-op in JavaScript, hence the special case). */
export function prefixMask(prefixLength: number): number {
  return prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
}

/** The range of `prefixLength` starting at `base` (which must be the network address). */
export function makeCidr(base: number, prefixLength: number): Cidr {
  const size = 2 ** (32 - prefixLength);
  return { base, prefixLength, size, last: base + size - 1 };
}

function splitCidr(text: string): { address: number; prefixLength: number } | string {
  if (text.length > MAX_TEXT) {
    return 'use "a.b.c.d/n" with n from 0 to 32, e.g. "10.233.0.0/16"';
  }
  const slash = text.indexOf("/");
  if (slash < 0) {
    return 'add a prefix length, e.g. "10.233.0.0/16"';
  }
  const address = tryParseIPv4(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (address === undefined) {
    return `the address before / must be four decimal numbers 0-255 separated by dots, without leading zeros, e.g. "10.233.0.0/16"`;
  }
  if (!/^(?:[0-9]|[12][0-9]|3[0-2])$/.test(prefixText)) {
    return "the prefix length after / must be a whole number from 0 to 32, without leading zeros";
  }
  return { address, prefixLength: Number(prefixText) };
}

/**
 * Explains why `text` is not a CIDR range, or returns undefined when it is one.
 * With `requireNetwork` (the default) the address must be the network address, so "10.233.1.5/16" is
 * refused with the fix spelled out rather than silently widened: a typo there would move every container.
 */
export function cidrProblem(text: string, requireNetwork = true): string | undefined {
  const parts = splitCidr(text);
  if (typeof parts === "string") {
    return parts;
  }
  const base = (parts.address & prefixMask(parts.prefixLength)) >>> 0;
  if (requireNetwork && base !== parts.address) {
    return `host bits are set: the network address of /${parts.prefixLength} is ${formatIPv4(base)}, use "${formatIPv4(base)}/${parts.prefixLength}"`;
  }
  return undefined;
}

/** Parses "a.b.c.d/n" whose address is the network address; undefined otherwise. */
export function tryParseCidr(text: string): Cidr | undefined {
  const parts = splitCidr(text);
  if (typeof parts === "string" || (parts.address & prefixMask(parts.prefixLength)) >>> 0 !== parts.address) {
    return undefined;
  }
  return makeCidr(parts.address, parts.prefixLength);
}

/** Parses a strict CIDR (network address required) or throws an error naming `property`. */
export function parseCidr(text: string, property = "cidr"): Cidr {
  const cidr = tryParseCidr(text);
  if (cidr === undefined) {
    throw new Error(`${property} ${display(text)} is not a valid IPv4 CIDR: ${cidrProblem(text, true)}`);
  }
  return cidr;
}

/** Parses a CIDR and clears host bits ("10.233.1.5/16" → 10.233.0.0/16), or throws naming `property`. */
export function normaliseCidr(text: string, property = "cidr"): Cidr {
  const parts = splitCidr(text);
  if (typeof parts === "string") {
    throw new Error(`${property} ${display(text)} is not a valid IPv4 CIDR: ${parts}`);
  }
  return makeCidr((parts.address & prefixMask(parts.prefixLength)) >>> 0, parts.prefixLength);
}

/** Parses either a single address (as a /32) or a strict CIDR; undefined when it is neither. */
export function tryParseAddressOrCidr(text: string): Cidr | undefined {
  const address = tryParseIPv4(text);
  return address !== undefined ? makeCidr(address, 32) : tryParseCidr(text);
}

/** Formats a range as "a.b.c.d/n". */
export function formatCidr(cidr: Cidr): string {
  return `${formatIPv4(cidr.base)}/${cidr.prefixLength}`;
}

/** True when `address` (uint32) lies inside `cidr`. */
export function cidrContains(cidr: Cidr, address: number): boolean {
  return address >= cidr.base && address <= cidr.last;
}

/** True when every address of `inner` lies inside `outer`. */
export function cidrContainsCidr(outer: Cidr, inner: Cidr): boolean {
  return inner.base >= outer.base && inner.last <= outer.last;
}

/** True when the two ranges share at least one address. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return a.base <= b.last && b.base <= a.last;
}

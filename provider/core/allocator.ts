// Stable address allocation for an AddressPool: each member gets one block of the pool (a host and a
// container address), keeps it across updates, and never shares it. Pure, and linear in the member count.
//
// Layout: the pool is cut into blocks of /blockPrefixLength. Block N's base is pool base + N * block size;
// for blocks up to /30 the host side is base+1 and the container base+2 (a /24 gives 10.233.N.1 and
// 10.233.N.2, exactly as `nixos-container` allocates); a /31 block has no network/broadcast, so host = base and
// container = base+1. The first and last block of the pool are never handed out (10.233.0.0/16 with /24
// blocks yields N = 1..254, as nixos-container does), so capacity = 2^(blockPrefixLength - poolPrefix) - 2.
//
// IPv6 (only with `cidr6`): the same guarantees, placed independently in allocator6.ts; a new member takes
// the block index of its IPv4 block when free, so 10.233.N.2 goes with <cidr6 prefix>:N::2.

import { display } from "./display";
import {
  Cidr,
  cidrProblem,
  formatIPv4,
  makeCidr,
  tryParseAddressOrCidr,
  tryParseCidr,
  tryParseIPv4,
} from "./ipv4";
import {
  DEFAULT_BLOCK_PREFIX_LENGTH6,
  MAX_BLOCK_PREFIX_LENGTH6,
  Member6,
  PoolLayout6,
  blockAddresses6,
  layoutCapacity6,
  parseLayout6,
  place6,
  previousBlock6,
  reservedSpans6,
} from "./allocator6";
import {
  Cidr6,
  cidr6Problem,
  formatIPv6,
  ipv6Problem,
  looksLikeIPv6,
  makeCidr6,
  tryParseAddressOrCidr6,
  tryParseIPv6,
} from "./ipv6";
import { Failure, formatFailures, isUnknown, validateContainerName } from "./validate";

/** The two ends of a container's veth; the IPv6 pair only when the pool has `cidr6`. */
export interface Allocation {
  readonly hostAddress: string;
  readonly localAddress: string;
  readonly hostAddress6?: string;
  readonly localAddress6?: string;
}

/** A static entry: the IPv4 pair, the IPv6 pair, or both (each pair both-or-neither). */
export interface StaticAllocation {
  readonly hostAddress?: string;
  readonly localAddress?: string;
  readonly hostAddress6?: string;
  readonly localAddress6?: string;
}

/** What an AddressPool is asked to hand out. */
export interface PoolSpec {
  /** The pool, a strict CIDR (network address required). */
  readonly cidr: string;
  /** Size of each member's block, 24..31. */
  readonly blockPrefixLength: number;
  /** Names of the containers that need addresses, unique; also the order new members are placed in. */
  readonly members: readonly string[];
  /**
   * Fixed addresses for some members (keys must also be in `members`); may lie outside the pool. An entry
   * without the IPv4 pair gets IPv4 from the pool, one without the IPv6 pair IPv6 from cidr6.
   */
  readonly static: Readonly<Record<string, StaticAllocation>>;
  /** Addresses or CIDRs (IPv4, or IPv6 with cidr6) never handed out; every block they touch is skipped. */
  readonly exclude: readonly string[];
  /** The IPv6 pool, a strict CIDR; when given, every allocation also gets hostAddress6/localAddress6. */
  readonly cidr6?: string;
  /** Size of each member's IPv6 block, 64..127. @default 64 */
  readonly blockPrefixLength6?: number;
}

/** The pool nixos-container itself draws from. */
export const DEFAULT_POOL_CIDR = "10.233.0.0/16";
/** One /24 per container: host .1, container .2, the nixos-container layout. */
export const DEFAULT_BLOCK_PREFIX_LENGTH = 24;
export { DEFAULT_BLOCK_PREFIX_LENGTH6, defaultCidr6 } from "./allocator6";
const MIN_BLOCK_PREFIX_LENGTH = 24;
const MAX_BLOCK_PREFIX_LENGTH = 31;

/** Thrown for an invalid spec or a full pool; `failures` lets `check` report each offender separately. */
export class AllocationError extends Error {
  readonly failures: readonly Failure[];
  constructor(failures: readonly Failure[]) {
    super(formatFailures(failures));
    this.name = "AllocationError";
    this.failures = failures;
  }
}

/** The block geometry of a pool. */
export interface PoolLayout {
  readonly pool: Cidr;
  readonly blockPrefixLength: number;
  readonly blockSize: number;
  /** Number of blocks in the pool, including the first and last, which are never handed out. */
  readonly blockCount: number;
  /** Offset of the host address inside a block (1, or 0 for /31). */
  readonly hostOffset: number;
  /** Offset of the container address inside a block (2, or 1 for /31). */
  readonly localOffset: number;
}

/** The layout, or every reason there is none, each naming `cidr` or `blockPrefixLength`. */
function parseLayout(cidr: string, blockPrefixLength: number): PoolLayout | Failure[] {
  const failures: Failure[] = [];
  const pool = typeof cidr === "string" ? tryParseCidr(cidr) : undefined;
  // An unknown input (preview, computed later) is not an error; allocate refuses to run on it instead.
  if (pool === undefined && !isUnknown(cidr)) {
    const problem = typeof cidr === "string" ? cidrProblem(cidr, true) : "it must be a string";
    failures.push({
      property: "cidr",
      message: `cidr ${display(cidr)} is not a valid IPv4 CIDR: ${problem}`,
    });
  }
  const knownBlock = !isUnknown(blockPrefixLength);
  if (
    knownBlock &&
    (!Number.isInteger(blockPrefixLength) ||
      blockPrefixLength < MIN_BLOCK_PREFIX_LENGTH ||
      blockPrefixLength > MAX_BLOCK_PREFIX_LENGTH)
  ) {
    failures.push({
      property: "blockPrefixLength",
      message:
        `blockPrefixLength ${display(blockPrefixLength)} is not allowed: use a whole number from ` +
        `${MIN_BLOCK_PREFIX_LENGTH} (one /24 per container, the nixos-container layout) to ${MAX_BLOCK_PREFIX_LENGTH} (two addresses per container)`,
    });
  } else if (knownBlock && pool !== undefined && pool.prefixLength > blockPrefixLength) {
    failures.push({
      property: "blockPrefixLength",
      message:
        `blockPrefixLength ${blockPrefixLength} is larger than the pool ${cidr} itself: ` +
        `use a pool of /${blockPrefixLength - 2} or larger, or a blockPrefixLength of at least ${pool.prefixLength + 2}`,
    });
  }
  if (pool === undefined || !knownBlock || failures.length > 0) {
    return failures;
  }
  const slash31 = blockPrefixLength === 31;
  return {
    pool,
    blockPrefixLength,
    blockSize: 2 ** (32 - blockPrefixLength),
    blockCount: 2 ** (blockPrefixLength - pool.prefixLength),
    hostOffset: slash31 ? 0 : 1,
    localOffset: slash31 ? 1 : 2,
  };
}

/** Computes the block geometry, or throws an AllocationError naming `cidr` / `blockPrefixLength`. */
function poolLayout(cidr: string, blockPrefixLength: number): PoolLayout {
  const layout = parseLayout(cidr, blockPrefixLength);
  if (Array.isArray(layout)) {
    throw layout.length > 0 ? new AllocationError(layout) : unknownInputError();
  }
  return layout;
}

/** How many members the pool can hold before static/exclude reservations: all blocks but the first and last. */
export function poolCapacity(cidr: string, blockPrefixLength: number): number {
  return Math.max(0, poolLayout(cidr, blockPrefixLength).blockCount - 2);
}

/**
 * How many members the IPv6 pool can hold before reservations (all blocks but the first and last), capped at
 * Number.MAX_SAFE_INTEGER (a /48 of /127 blocks has 2^79). Throws like poolCapacity for a bad or unknown input.
 */
export function poolCapacity6(cidr6: string, blockPrefixLength6 = DEFAULT_BLOCK_PREFIX_LENGTH6): number {
  const layout = parseLayout6(cidr6, blockPrefixLength6);
  if (Array.isArray(layout)) {
    throw layout.length > 0 ? new AllocationError(layout) : unknownInputError();
  }
  return layoutCapacity6(layout);
}

/** The addresses of block `index` of the layout. */
function blockAllocation(layout: PoolLayout, index: number): Allocation {
  const base = layout.pool.base + index * layout.blockSize;
  return {
    hostAddress: formatIPv4(base + layout.hostOffset),
    localAddress: formatIPv4(base + layout.localOffset),
  };
}

function blockOf(layout: PoolLayout, address: number): number {
  return Math.floor((address - layout.pool.base) / layout.blockSize);
}

/** A spec parsed once: the layout and the ranges static and exclude take, or every failure found. */
interface ParsedSpec {
  readonly layout: PoolLayout | undefined;
  /** Excluded ranges and static addresses (as /32s); only those inside the pool matter. */
  readonly reserved: readonly Cidr[];
  /** The IPv6 layout when the spec has a (valid) cidr6. */
  readonly layout6: PoolLayout6 | undefined;
  /** Excluded IPv6 ranges and static IPv6 addresses (as /128s). */
  readonly reserved6: readonly Cidr6[];
  /** Members whose IPv4 / IPv6 pair is static. */
  readonly static4: ReadonlySet<string>;
  readonly static6: ReadonlySet<string>;
  readonly failures: readonly Failure[];
}

const NO_IPV6 = "but the pool has no IPv6: set ipv6 to true or give cidr6, or remove it";

function parseSpec(spec: PoolSpec): ParsedSpec {
  const layout = parseLayout(spec.cidr, spec.blockPrefixLength);
  const failures: Failure[] = Array.isArray(layout) ? [...layout] : [];
  const reserved: Cidr[] = [];
  const has6 = spec.cidr6 !== undefined;
  const layout6 = has6
    ? parseLayout6(spec.cidr6, spec.blockPrefixLength6 ?? DEFAULT_BLOCK_PREFIX_LENGTH6)
    : undefined;
  if (Array.isArray(layout6)) failures.push(...layout6);
  const reserved6: Cidr6[] = [];
  const static4 = new Set<string>();
  const static6 = new Set<string>();

  const seen = new Map<string, number>();
  spec.members.forEach((name, i) => {
    failures.push(...validateContainerName(name, `members[${i}]`));
    const first = seen.get(name);
    if (first === undefined) {
      seen.set(name, i);
    } else {
      failures.push({
        property: `members[${i}]`,
        message: `members[${i}] ${display(name)} is listed twice (also members[${first}]): list each container once`,
      });
    }
  });

  // Statics must also be members: a typo in a static key would otherwise silently add a container.
  const staticOwner = new Map<number, string>();
  const staticOwner6 = new Map<bigint, string>();
  for (const [name, allocation] of Object.entries(spec.static)) {
    const prefix = `static.${name}`;
    if (!seen.has(name)) {
      failures.push({
        property: prefix,
        message: `static key ${display(name)} is not in members: add it to members, or fix the spelling`,
      });
    }
    const entry = (allocation as StaticAllocation | null) ?? {};
    const given6 = entry.hostAddress6 !== undefined || entry.localAddress6 !== undefined;
    if (given6) {
      static6.add(name);
      parseStatic6(prefix, entry, has6, staticOwner6, reserved6, failures);
    }
    // An entry with only the IPv6 pair takes IPv4 from the pool; otherwise the IPv4 pair is checked as always.
    if (given6 && entry.hostAddress === undefined && entry.localAddress === undefined) {
      continue;
    }
    static4.add(name);
    for (const field of ["hostAddress", "localAddress"] as const) {
      const text: unknown = entry[field];
      if (isUnknown(text)) {
        continue;
      }
      const address = typeof text === "string" ? tryParseIPv4(text) : undefined;
      if (address === undefined) {
        failures.push({
          property: `${prefix}.${field}`,
          message:
            `${prefix}.${field} ${display(text)} is not a valid IPv4 address: use four decimal numbers ` +
            '0-255 separated by dots, without leading zeros, e.g. "10.233.1.2"',
        });
        continue;
      }
      const owner = staticOwner.get(address);
      if (owner !== undefined) {
        failures.push({
          property: `${prefix}.${field}`,
          message: `${prefix}.${field} ${display(text)} is already used by ${owner}: give every static address once`,
        });
      } else {
        staticOwner.set(address, `${prefix}.${field}`);
      }
      reserved.push(makeCidr(address, 32));
    }
  }

  spec.exclude.forEach((entry, i) => {
    if (typeof entry === "string" && looksLikeIPv6(entry)) {
      parseExclude6(entry, i, has6, reserved6, failures);
      return;
    }
    const range = typeof entry === "string" ? tryParseAddressOrCidr(entry) : undefined;
    if (range !== undefined) {
      reserved.push(range);
    } else if (!isUnknown(entry)) {
      const problem = typeof entry === "string" && entry.includes("/") ? cidrProblem(entry, true) : undefined;
      failures.push({
        property: `exclude[${i}]`,
        message:
          `exclude[${i}] ${display(entry)} is neither an IPv4 address nor a CIDR: ` +
          (problem ?? 'use e.g. "10.233.7.2" or "10.233.8.0/24"'),
      });
    }
  });
  return {
    layout: Array.isArray(layout) ? undefined : layout,
    reserved,
    layout6: layout6 === undefined || Array.isArray(layout6) ? undefined : layout6,
    reserved6,
    static4,
    static6,
    failures,
  };
}

function parseStatic6(
  prefix: string,
  entry: StaticAllocation,
  has6: boolean,
  owners: Map<bigint, string>,
  reserved6: Cidr6[],
  failures: Failure[],
): void {
  for (const field of ["hostAddress6", "localAddress6"] as const) {
    const text: unknown = entry[field];
    const property = `${prefix}.${field}`;
    if (isUnknown(text)) {
      continue;
    }
    if (!has6) {
      failures.push({ property, message: `${property} ${display(text)} is given ${NO_IPV6}` });
      continue;
    }
    if (text === undefined) {
      const other = field === "hostAddress6" ? "localAddress6" : "hostAddress6";
      failures.push({
        property,
        message: `${property} is missing: give both hostAddress6 and localAddress6 of ${prefix}, or neither (${other} alone is not enough)`,
      });
      continue;
    }
    const address = typeof text === "string" ? tryParseIPv6(text) : undefined;
    if (address === undefined) {
      const problem = typeof text === "string" ? ipv6Problem(text) : "it must be a string";
      failures.push({
        property,
        message: `${property} ${display(text)} is not a valid IPv6 address: ${problem}`,
      });
      continue;
    }
    const owner = owners.get(address);
    if (owner !== undefined) {
      failures.push({
        property,
        message: `${property} ${display(text)} is already used by ${owner}: give every static address once`,
      });
    } else {
      owners.set(address, property);
    }
    reserved6.push(makeCidr6(address, 128));
  }
}

function parseExclude6(
  entry: string,
  i: number,
  has6: boolean,
  reserved6: Cidr6[],
  failures: Failure[],
): void {
  const property = `exclude[${i}]`;
  if (!has6) {
    failures.push({
      property,
      message: `${property} ${display(entry)} is an IPv6 address or CIDR ${NO_IPV6}`,
    });
    return;
  }
  const range = tryParseAddressOrCidr6(entry);
  if (range !== undefined) {
    reserved6.push(range);
    return;
  }
  const problem = entry.includes("/")
    ? `is not a valid IPv6 CIDR: ${cidr6Problem(entry, true)}`
    : `is not a valid IPv6 address: ${ipv6Problem(entry)}`;
  failures.push({ property, message: `${property} ${display(entry)} ${problem}` });
}

/**
 * True when part of the spec is the engine's unknown value (preview of an input computed later): the
 * allocations cannot be known then, and `allocate` refuses to guess.
 */
export function specHasUnknowns(spec: PoolSpec): boolean {
  return (
    isUnknown(spec.cidr) ||
    isUnknown(spec.blockPrefixLength) ||
    spec.members.some(isUnknown) ||
    spec.exclude.some(isUnknown) ||
    Object.values(spec.static).some(
      (a) =>
        isUnknown(a.hostAddress) ||
        isUnknown(a.localAddress) ||
        isUnknown(a.hostAddress6) ||
        isUnknown(a.localAddress6),
    ) ||
    isUnknown(spec.cidr6) ||
    isUnknown(spec.blockPrefixLength6)
  );
}

function unknownInputError(): Error {
  return new Error(
    "the address pool has inputs that are not known yet (preview): check specHasUnknowns() and report the allocations as unknown instead",
  );
}

/**
 * Every problem with a spec (not counting a full pool), each naming its property. Empty when `allocate`
 * can run. `check` uses this to report all offenders at once.
 */
export function checkPoolSpec(spec: PoolSpec): Failure[] {
  return [...parseSpec(spec).failures];
}

/** A closed range of block indices that may not be handed out. */
interface Span {
  lo: number;
  hi: number;
}

function reservedSpans(layout: PoolLayout, reserved: readonly Cidr[]): Span[] {
  const spans: Span[] = [];
  const { pool } = layout;
  for (const range of reserved) {
    const lo = Math.max(range.base, pool.base);
    const hi = Math.min(range.last, pool.last);
    if (lo <= hi) {
      spans.push({ lo: blockOf(layout, lo), hi: blockOf(layout, hi) });
    }
  }
  spans.sort((a, b) => a.lo - b.lo);
  const merged: Span[] = [];
  for (const span of spans) {
    const top = merged[merged.length - 1];
    if (top !== undefined && span.lo <= top.hi + 1) {
      top.hi = Math.max(top.hi, span.hi);
    } else {
      merged.push({ ...span });
    }
  }
  return merged;
}

function inSpans(spans: readonly Span[], index: number): boolean {
  let lo = 0;
  let hi = spans.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (spans[mid].hi < index) {
      lo = mid + 1;
    } else if (spans[mid].lo > index) {
      hi = mid - 1;
    } else {
      return true;
    }
  }
  return false;
}

/** The block a previous allocation sits in, if it still fits the layout exactly; undefined otherwise. */
function previousBlock(layout: PoolLayout, previous: unknown): number | undefined {
  if (typeof previous !== "object" || previous === null) {
    return undefined;
  }
  const { hostAddress, localAddress } = previous as Partial<Record<keyof Allocation, unknown>>;
  const host = typeof hostAddress === "string" ? tryParseIPv4(hostAddress) : undefined;
  const local = typeof localAddress === "string" ? tryParseIPv4(localAddress) : undefined;
  if (host === undefined || local === undefined || host < layout.pool.base || host > layout.pool.last) {
    return undefined;
  }
  const index = blockOf(layout, host);
  const base = layout.pool.base + index * layout.blockSize;
  const aligned = host === base + layout.hostOffset && local === base + layout.localOffset;
  return aligned && index >= 1 && index <= layout.blockCount - 2 ? index : undefined;
}

const MAX_NAMES_IN_ERROR = 50;

/** A pool as its "is full" message names it: IPv4 (`family` "") or IPv6 ("6", as in `cidr6`). */
interface FullPool {
  readonly family: "" | "6";
  readonly cidr: string;
  readonly prefixLength: number;
  readonly blockPrefixLength: number;
  readonly maxBlockPrefixLength: number;
  /** Blocks it hands out: all but the first and last. */
  readonly capacity: number | bigint;
}

/** Why a pool cannot place every member, and what would make room: the same words for IPv4 and IPv6. */
function poolFullError(
  pool: FullPool,
  reserved: number | bigint,
  asked: number,
  unplaced: readonly string[],
): AllocationError {
  const f = pool.family;
  const shown = unplaced.slice(0, MAX_NAMES_IN_ERROR).join(", ");
  const more =
    unplaced.length > MAX_NAMES_IN_ERROR ? ` and ${unplaced.length - MAX_NAMES_IN_ERROR} more` : "";
  const larger =
    pool.prefixLength > 0 ? `a larger cidr${f} (e.g. a /${pool.prefixLength - 1})` : `a larger cidr${f}`;
  const denser =
    pool.blockPrefixLength < pool.maxBlockPrefixLength
      ? `, a larger blockPrefixLength${f} (smaller blocks, up to ${pool.maxBlockPrefixLength})`
      : "";
  return new AllocationError([
    {
      property: "members",
      message:
        `${f ? "IPv6 " : ""}address pool ${pool.cidr} is full: with blockPrefixLength${f} ${pool.blockPrefixLength} ` +
        `it has ${pool.capacity} blocks to hand out (the first and last are never used), ${reserved} of them ` +
        `reserved by static or exclude, and ${asked} members need a block; ${unplaced.length} could not be ` +
        `placed: ${shown}${more}. Use ${larger}${denser}, fewer exclusions, or fewer members`,
    },
  ]);
}

/**
 * Gives every member its addresses. Static members get exactly theirs. A member listed in `previous` keeps
 * its block while that block still fits the layout, lies in the pool, and is neither excluded nor touched by
 * a static address; when two members claim one block, the name that sorts first keeps it. Everyone else
 * gets the lowest free block, in the order of `members`. Throws AllocationError for an invalid spec or a
 * full pool, and a plain Error when `specHasUnknowns(spec)`. The result lists members in the order given.
 */
export function allocate(
  spec: PoolSpec,
  previous: Readonly<Record<string, Allocation>>,
): Record<string, Allocation> {
  if (specHasUnknowns(spec)) {
    throw unknownInputError();
  }
  const parsed = parseSpec(spec);
  const layout = parsed.layout;
  if (parsed.failures.length > 0 || layout === undefined) {
    throw new AllocationError(parsed.failures);
  }
  const reserved = reservedSpans(layout, parsed.reserved);
  const lastUsable = layout.blockCount - 2;

  const blockOfMember = new Map<string, number>();
  const holder = new Map<number, string>();
  for (const name of spec.members) {
    if (parsed.static4.has(name) || !Object.hasOwn(previous, name)) {
      continue;
    }
    const index = previousBlock(layout, previous[name]);
    if (index === undefined || inSpans(reserved, index)) {
      continue;
    }
    const other = holder.get(index);
    if (other !== undefined) {
      if (other < name) {
        continue;
      }
      blockOfMember.delete(other);
    }
    holder.set(index, name);
    blockOfMember.set(name, index);
  }

  // The taken blocks as sorted spans: a cursor walks the gaps, so placement is linear after one sort.
  const kept = [...holder.keys()].sort((a, b) => a - b).map((i) => ({ lo: i, hi: i }));
  const taken = [...reserved, ...kept].sort((a, b) => a.lo - b.lo);
  let cursor = 1;
  let next = 0;
  const unplaced: string[] = [];
  let asked = 0;
  for (const name of spec.members) {
    if (parsed.static4.has(name) || blockOfMember.has(name)) {
      continue;
    }
    asked++;
    for (;;) {
      while (next < taken.length && taken[next].hi < cursor) {
        next++;
      }
      if (next < taken.length && taken[next].lo <= cursor) {
        cursor = taken[next].hi + 1;
        continue;
      }
      break;
    }
    if (cursor > lastUsable) {
      unplaced.push(name);
    } else {
      blockOfMember.set(name, cursor++);
    }
  }
  if (unplaced.length > 0) {
    const reservedCount = reserved.reduce(
      (sum, s) => sum + Math.max(0, Math.min(s.hi, lastUsable) - Math.max(s.lo, 1) + 1),
      0,
    );
    const pool: FullPool = {
      family: "",
      cidr: spec.cidr,
      prefixLength: layout.pool.prefixLength,
      blockPrefixLength: layout.blockPrefixLength,
      maxBlockPrefixLength: MAX_BLOCK_PREFIX_LENGTH,
      capacity: Math.max(0, layout.blockCount - 2),
    };
    throw poolFullError(pool, reservedCount, asked + holder.size, unplaced);
  }
  const v6 =
    parsed.layout6 === undefined
      ? undefined
      : allocate6(spec, parsed, parsed.layout6, previous, blockOfMember);

  const result: Record<string, Allocation> = {};
  for (const name of spec.members) {
    const fixed = parsed.static4.has(name) ? spec.static[name] : undefined;
    const index = blockOfMember.get(name);
    const four =
      fixed !== undefined
        ? { hostAddress: fixed.hostAddress as string, localAddress: fixed.localAddress as string }
        : index !== undefined
          ? blockAllocation(layout, index)
          : undefined;
    if (four !== undefined) {
      const six = v6?.get(name);
      result[name] = six === undefined ? four : { ...four, hostAddress6: six.host, localAddress6: six.local };
    }
  }
  return result;
}

/**
 * The IPv6 pairs, by the same rules as IPv4: static pairs exactly (canonical text), a previous pair kept
 * while its block fits, a new member its IPv4 block's index when free, else the lowest free block.
 */
function allocate6(
  spec: PoolSpec,
  parsed: ParsedSpec,
  layout6: PoolLayout6,
  previous: Readonly<Record<string, Allocation>>,
  blockOfMember: ReadonlyMap<string, number>,
): Map<string, { host: string; local: string }> {
  const members: Member6[] = [];
  for (const name of spec.members) {
    if (parsed.static6.has(name)) continue;
    const before = Object.hasOwn(previous, name) ? (previous[name] as unknown) : undefined;
    const pair = typeof before === "object" && before !== null ? (before as Partial<Allocation>) : {};
    const index4 = blockOfMember.get(name);
    members.push({
      name,
      previous: previousBlock6(layout6, pair.hostAddress6, pair.localAddress6),
      preferred: index4 === undefined ? undefined : BigInt(index4),
    });
  }
  const placement = place6(layout6, reservedSpans6(layout6, parsed.reserved6), members);
  if (placement.unplaced.length > 0) {
    const pool: FullPool = {
      family: "6",
      cidr: layout6.cidr6,
      prefixLength: layout6.pool.prefixLength,
      blockPrefixLength: layout6.blockPrefixLength,
      maxBlockPrefixLength: MAX_BLOCK_PREFIX_LENGTH6,
      capacity: layoutCapacity6(layout6),
    };
    throw poolFullError(pool, placement.reservedCount, placement.asked, placement.unplaced);
  }
  const pairs = new Map<string, { host: string; local: string }>();
  for (const name of spec.members) {
    if (parsed.static6.has(name)) {
      const fixed = spec.static[name];
      pairs.set(name, {
        host: formatIPv6(tryParseIPv6(fixed.hostAddress6 as string) as bigint),
        local: formatIPv6(tryParseIPv6(fixed.localAddress6 as string) as bigint),
      });
    } else {
      const index = placement.blocks.get(name);
      if (index !== undefined) pairs.set(name, blockAddresses6(layout6, index));
    }
  }
  return pairs;
}

/** An address held by a member of each of two allocation maps. */
export interface Collision {
  readonly address: string;
  readonly left: string;
  readonly right: string;
}

/**
 * Addresses that appear in both maps (host or container side), for checks across pools or against what a
 * host already has. Linear in the sizes of the maps.
 */
export function findCollisions(
  left: Readonly<Record<string, Allocation>>,
  right: Readonly<Record<string, Allocation>>,
): Collision[] {
  const owners = new Map<string, string>();
  for (const [name, allocation] of Object.entries(left)) {
    for (const address of addressesOf(allocation)) owners.set(address, name);
  }
  const collisions: Collision[] = [];
  for (const [name, allocation] of Object.entries(right)) {
    for (const address of new Set(addressesOf(allocation))) {
      const owner = owners.get(address);
      if (owner !== undefined) {
        collisions.push({ address, left: owner, right: name });
      }
    }
  }
  return collisions;
}

/** Both ends, IPv4 and (when present) IPv6, the IPv6 ones canonical so equal addresses compare equal. */
function addressesOf(allocation: Allocation): string[] {
  const all = [allocation.hostAddress, allocation.localAddress];
  for (const text of [allocation.hostAddress6, allocation.localAddress6]) {
    if (text === undefined) continue;
    const value = tryParseIPv6(text);
    all.push(value === undefined ? text : formatIPv6(value));
  }
  return all;
}

// The IPv6 half of an AddressPool: block geometry of `cidr6`, the default ULA prefix, and placement of
// members into /blockPrefixLength6 blocks. Indices are bigints (a /48 of /127 blocks has 2^79 of them), so
// this mirrors the number-based IPv4 placement in allocator.ts instead of sharing it: that path stays fast.
//
// Layout: block N of cidr6 gives host base+1 and container base+2 ("fd12:3456:789a:1::1" / "::2" for /64
// blocks, as NixOS users write them); a /127 block (RFC 6164) gives base and base+1. Block 0 and the last
// block are never handed out, as for IPv4.

import { createHash } from "node:crypto";
import { display } from "./display";
import {
  Cidr6,
  cidr6Problem,
  cidr6sOverlap,
  formatIPv6,
  makeCidr6,
  tryParseCidr6,
  tryParseIPv6,
} from "./ipv6";
import { Failure, isUnknown } from "./validate";

/** One /64 per container: host ::1, container ::2. */
export const DEFAULT_BLOCK_PREFIX_LENGTH6 = 64;
export const MIN_BLOCK_PREFIX_LENGTH6 = 64;
export const MAX_BLOCK_PREFIX_LENGTH6 = 127;

/** The block geometry of an IPv6 pool. */
export interface PoolLayout6 {
  readonly pool: Cidr6;
  readonly cidr6: string;
  readonly blockPrefixLength: number;
  readonly blockSize: bigint;
  /** Number of blocks, including the first and last, which are never handed out. */
  readonly blockCount: bigint;
  readonly hostOffset: bigint;
  readonly localOffset: bigint;
}

/**
 * The default `cidr6`: an RFC 4193 ULA /48, fdXX:XXXX:XXXX::/48, whose 40-bit Global ID is the first five
 * bytes of SHA-256("<project>/<stack>/<poolName>"). Deterministic, so preview shows it and every `up` agrees;
 * renaming the project, stack or pool gives another prefix (and moves every IPv6 address of the pool).
 */
export function defaultCidr6(project: string, stack: string, poolName: string): string {
  const digest = createHash("sha256").update(`${project}/${stack}/${poolName}`, "utf8").digest();
  const globalId = digest.subarray(0, 5).reduce((acc, byte) => (acc << 8n) | BigInt(byte), 0n);
  return `${formatIPv6(((0xfdn << 40n) | globalId) << 80n)}/48`;
}

// Ranges no pool may overlap: addresses there cannot be put on a veth (or mean something else).
const FORBIDDEN: readonly { range: Cidr6; what: string }[] = [
  { range: makeCidr6(0n, 127), what: "the unspecified and loopback addresses (::/127)" },
  { range: makeCidr6(0xfe80n << 112n, 10), what: "link-local addresses (fe80::/10)" },
  { range: makeCidr6(0xffn << 120n, 8), what: "multicast (ff00::/8)" },
];

/** The layout, or every reason there is none (empty when an input is unknown), naming cidr6 / blockPrefixLength6. */
export function parseLayout6(cidr6: unknown, blockPrefixLength: unknown): PoolLayout6 | Failure[] {
  const failures: Failure[] = [];
  const pool = typeof cidr6 === "string" ? tryParseCidr6(cidr6, true) : undefined;
  if (pool === undefined && !isUnknown(cidr6)) {
    const problem = typeof cidr6 === "string" ? cidr6Problem(cidr6, true) : "it must be a string";
    failures.push({
      property: "cidr6",
      message: `cidr6 ${display(cidr6)} is not a valid IPv6 CIDR: ${problem}`,
    });
  }
  const forbidden = pool && FORBIDDEN.find((f) => cidr6sOverlap(f.range, pool));
  if (forbidden) {
    failures.push({
      property: "cidr6",
      message: `cidr6 ${display(cidr6)} overlaps ${forbidden.what}: use a ULA prefix such as "fd12:3456:789a::/48" or a global prefix routed to the host`,
    });
  }
  const knownBlock = !isUnknown(blockPrefixLength);
  if (
    knownBlock &&
    (typeof blockPrefixLength !== "number" ||
      !Number.isInteger(blockPrefixLength) ||
      blockPrefixLength < MIN_BLOCK_PREFIX_LENGTH6 ||
      blockPrefixLength > MAX_BLOCK_PREFIX_LENGTH6)
  ) {
    failures.push({
      property: "blockPrefixLength6",
      message:
        `blockPrefixLength6 ${display(blockPrefixLength)} is not allowed: use a whole number from ` +
        `${MIN_BLOCK_PREFIX_LENGTH6} (one /64 per container, host ::1 and container ::2) to ${MAX_BLOCK_PREFIX_LENGTH6} (two addresses per container)`,
    });
  } else if (knownBlock && pool !== undefined && pool.prefixLength > (blockPrefixLength as number)) {
    failures.push({
      property: "blockPrefixLength6",
      message:
        `blockPrefixLength6 ${String(blockPrefixLength)} is larger than the pool ${String(cidr6)} itself: ` +
        `use a cidr6 of /${(blockPrefixLength as number) - 2} or larger, or a blockPrefixLength6 of at least ${pool.prefixLength + 2}`,
    });
  }
  if (pool === undefined || !knownBlock || failures.length > 0) {
    return failures;
  }
  const length = blockPrefixLength as number;
  const slash127 = length === 127;
  return {
    pool,
    cidr6: cidr6 as string,
    blockPrefixLength: length,
    blockSize: 1n << BigInt(128 - length),
    blockCount: 1n << BigInt(length - pool.prefixLength),
    hostOffset: slash127 ? 0n : 1n,
    localOffset: slash127 ? 1n : 2n,
  };
}

/** Blocks the pool can hand out (all but the first and last), capped at Number.MAX_SAFE_INTEGER. */
export function layoutCapacity6(layout: PoolLayout6): number {
  const capacity = layout.blockCount > 2n ? layout.blockCount - 2n : 0n;
  return capacity > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(capacity);
}

/** The canonical addresses of block `index`. */
export function blockAddresses6(layout: PoolLayout6, index: bigint): { host: string; local: string } {
  const base = layout.pool.base + index * layout.blockSize;
  return { host: formatIPv6(base + layout.hostOffset), local: formatIPv6(base + layout.localOffset) };
}

function blockOf6(layout: PoolLayout6, address: bigint): bigint {
  return (address - layout.pool.base) / layout.blockSize;
}

/** The usable block a previous pair sits in exactly, or undefined (wrong layout, outside the pool, garbage). */
export function previousBlock6(layout: PoolLayout6, host: unknown, local: unknown): bigint | undefined {
  const h = typeof host === "string" ? tryParseIPv6(host) : undefined;
  const l = typeof local === "string" ? tryParseIPv6(local) : undefined;
  if (h === undefined || l === undefined || h < layout.pool.base || h > layout.pool.last) {
    return undefined;
  }
  const index = blockOf6(layout, h);
  const base = layout.pool.base + index * layout.blockSize;
  const aligned = h === base + layout.hostOffset && l === base + layout.localOffset;
  return aligned && index >= 1n && index <= layout.blockCount - 2n ? index : undefined;
}

/** A closed range of block indices that may not be handed out. */
export interface Span6 {
  lo: bigint;
  hi: bigint;
}

/** The blocks touched by `reserved` ranges, merged and sorted. */
export function reservedSpans6(layout: PoolLayout6, reserved: readonly Cidr6[]): Span6[] {
  const { pool } = layout;
  const spans: Span6[] = [];
  for (const range of reserved) {
    const lo = range.base > pool.base ? range.base : pool.base;
    const hi = range.last < pool.last ? range.last : pool.last;
    if (lo <= hi) spans.push({ lo: blockOf6(layout, lo), hi: blockOf6(layout, hi) });
  }
  return mergeSpans(spans);
}

function compare(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function mergeSpans(spans: Span6[]): Span6[] {
  spans.sort((a, b) => compare(a.lo, b.lo));
  const merged: Span6[] = [];
  for (const span of spans) {
    const top = merged[merged.length - 1];
    if (top !== undefined && span.lo <= top.hi + 1n) {
      if (span.hi > top.hi) top.hi = span.hi;
    } else {
      merged.push({ ...span });
    }
  }
  return merged;
}

function inSpans6(spans: readonly Span6[], index: bigint): boolean {
  let lo = 0;
  let hi = spans.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (spans[mid].hi < index) lo = mid + 1;
    else if (spans[mid].lo > index) hi = mid - 1;
    else return true;
  }
  return false;
}

/** What placement needs for one member that is not static on IPv6. */
export interface Member6 {
  readonly name: string;
  /** Its block in the previous allocations, if that still fits the layout. */
  readonly previous?: bigint;
  /** The index of its IPv4 block, tried first for a new member so 10.233.N.2 and …:N::2 agree. */
  readonly preferred?: bigint;
}

/** The result of placement: each placed member's block, and who could not be placed. */
export interface Placement6 {
  readonly blocks: Map<string, bigint>;
  readonly unplaced: string[];
  /** Members that needed a block (placed or not), for the full-pool message. */
  readonly asked: number;
  /** Usable blocks covered by reservations, for the full-pool message. */
  readonly reservedCount: bigint;
}

/**
 * Places members: a previous block is kept unless reserved (two claims: the name sorting first keeps it);
 * then a new member takes its IPv4 block's index when that is usable and free; everyone else the lowest free
 * block, in the order given. One sort, then linear.
 */
export function place6(
  layout: PoolLayout6,
  reserved: readonly Span6[],
  members: readonly Member6[],
): Placement6 {
  const lastUsable = layout.blockCount - 2n;
  const blocks = new Map<string, bigint>();
  const holder = new Map<bigint, string>();
  for (const m of members) {
    if (m.previous === undefined || inSpans6(reserved, m.previous)) continue;
    const other = holder.get(m.previous);
    if (other !== undefined) {
      if (other < m.name) continue;
      blocks.delete(other);
    }
    holder.set(m.previous, m.name);
    blocks.set(m.name, m.previous);
  }
  for (const m of members) {
    const p = m.preferred;
    if (blocks.has(m.name) || p === undefined || p < 1n || p > lastUsable) continue;
    if (holder.has(p) || inSpans6(reserved, p)) continue;
    holder.set(p, m.name);
    blocks.set(m.name, p);
  }
  const taken = mergeSpans([
    ...reserved.map((s) => ({ ...s })),
    ...[...holder.keys()].map((i) => ({ lo: i, hi: i })),
  ]);
  let cursor = 1n;
  let next = 0;
  let asked = 0;
  const unplaced: string[] = [];
  for (const m of members) {
    if (blocks.has(m.name)) continue;
    asked++;
    while (next < taken.length && taken[next].hi < cursor) next++;
    if (next < taken.length && taken[next].lo <= cursor) cursor = taken[next].hi + 1n;
    if (cursor > lastUsable) {
      unplaced.push(m.name);
    } else {
      blocks.set(m.name, cursor++);
    }
  }
  let reservedCount = 0n;
  for (const s of reserved) {
    const lo = s.lo > 1n ? s.lo : 1n;
    const hi = s.hi < lastUsable ? s.hi : lastUsable;
    if (hi >= lo) reservedCount += hi - lo + 1n;
  }
  return { blocks, unplaced, asked: asked + holder.size, reservedCount };
}

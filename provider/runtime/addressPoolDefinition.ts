// Provider methods of `AddressPool`: a state-only resource. Allocation happens in `check`, from the previous
// allocations, so preview shows every address and addresses never move; nothing is done on any host.
import { display } from "../core/display";
import {
  Allocation,
  AllocationError,
  DEFAULT_BLOCK_PREFIX_LENGTH,
  DEFAULT_BLOCK_PREFIX_LENGTH6,
  DEFAULT_POOL_CIDR,
  allocate,
  checkPoolSpec,
  poolCapacity,
  poolCapacity6,
} from "../core/allocator";
import { Failure, UNKNOWN, isUnknown } from "../core/validate";
import { CheckResult, Handler, Props, diffWith, hasUnknown, toCheckFailures } from "./common";

function asAllocations(value: unknown): Record<string, Allocation> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return {};
  const result: Record<string, Allocation> = {};
  for (const [name, a] of Object.entries(value as Props)) {
    if (
      a &&
      typeof a === "object" &&
      typeof (a as Props).hostAddress === "string" &&
      typeof (a as Props).localAddress === "string"
    ) {
      const { hostAddress6, localAddress6 } = a as Props;
      result[name] = {
        hostAddress: (a as Props).hostAddress as string,
        localAddress: (a as Props).localAddress as string,
        // The IPv6 pair rides along when present, so it is kept across updates exactly like IPv4.
        ...(typeof hostAddress6 === "string" && typeof localAddress6 === "string"
          ? { hostAddress6, localAddress6 }
          : {}),
      };
    }
  }
  return result;
}

/** Static entries as given (unknown fields included), for validating the known parts in preview. */
function asAllocationsLoose(value: unknown): Record<string, Allocation> {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, Allocation>)
    : {};
}

/** The scalar inputs of a pool: each property, the type it must have, and how messages say what is allowed. */
const SCALAR_INPUTS: readonly (readonly [string, "string" | "number" | "boolean", string])[] = [
  ["cidr", "string", 'a string such as "10.233.0.0/16"'],
  ["blockPrefixLength", "number", "a number from 24 to 31"],
  ["ipv6", "boolean", "true or false"],
  ["cidr6", "string", 'a string such as "fd12:3456:789a::/48"'],
  ["defaultCidr6", "string", 'a string such as "fd12:3456:789a::/48"'],
  ["blockPrefixLength6", "number", "a number from 64 to 127"],
];

function shapeFailures(news: Props): Failure[] {
  const failures: Failure[] = [];
  for (const [property, type, allowed] of SCALAR_INPUTS) {
    const v = news[property];
    if (v !== undefined && !isUnknown(v) && typeof v !== type) {
      failures.push({ property, message: `${property} must be ${allowed}, got ${display(v)}` });
    }
  }
  if (
    !isUnknown(news.members) &&
    (!Array.isArray(news.members) || news.members.some((m) => typeof m !== "string"))
  ) {
    failures.push({
      property: "members",
      message: `members must be a list of container names, got ${display(news.members)}`,
    });
  }
  const fixed = news.static;
  if (
    fixed !== undefined &&
    !isUnknown(fixed) &&
    (fixed === null || typeof fixed !== "object" || Array.isArray(fixed))
  ) {
    failures.push({
      property: "static",
      message: `static must be a map of name → { hostAddress, localAddress }, got ${display(fixed)}`,
    });
  }
  if (
    news.exclude !== undefined &&
    !isUnknown(news.exclude) &&
    (!Array.isArray(news.exclude) || news.exclude.some((e) => typeof e !== "string"))
  ) {
    failures.push({
      property: "exclude",
      message: `exclude must be a list of addresses or CIDRs, got ${display(news.exclude)}`,
    });
  }
  return failures;
}

/**
 * The IPv6 side of the inputs. IPv6 is on with `ipv6: true`, or with `cidr6` unless `ipv6` is false (then
 * giving cidr6 is a contradiction). `defaultCidr6` is what the AddressPool class derives from the project,
 * stack and pool names; it is dropped when IPv6 is off, so an IPv4-only pool's inputs and outputs do not change.
 */
function ipv6Inputs(news: Props): { inputs: Props; failures: Failure[]; cidr6: unknown } {
  const { defaultCidr6, ...rest } = news;
  const failures: Failure[] = [];
  if (isUnknown(news.ipv6)) {
    // Unknown until up: validate what is known against the cidr6 it would have.
    return { inputs: { ...rest, defaultCidr6 }, failures, cidr6: news.cidr6 ?? defaultCidr6 ?? UNKNOWN };
  }
  const on = news.ipv6 === true || (news.ipv6 === undefined && news.cidr6 !== undefined);
  if (news.ipv6 === false && news.cidr6 !== undefined) {
    failures.push({
      property: "cidr6",
      message: `cidr6 ${display(news.cidr6)} is given but ipv6 is false: set ipv6 to true, or remove cidr6`,
    });
  }
  if (!on) {
    if (news.blockPrefixLength6 !== undefined) {
      failures.push({
        property: "blockPrefixLength6",
        message: `blockPrefixLength6 ${display(news.blockPrefixLength6)} is given but the pool has no IPv6: set ipv6 to true or give cidr6, or remove it`,
      });
    }
    return { inputs: rest, failures, cidr6: undefined };
  }
  const cidr6 = news.cidr6 ?? defaultCidr6;
  if (cidr6 === undefined) {
    failures.push({
      property: "cidr6",
      message:
        "cidr6 is missing: ipv6 is true but no IPv6 pool was given or derived; give cidr6 (e.g. a ULA " +
        '"fd12:3456:789a::/48"), or create the pool with the AddressPool class, which derives one',
    });
  }
  return {
    inputs: {
      ...rest,
      ipv6: true,
      cidr6,
      blockPrefixLength6: news.blockPrefixLength6 ?? DEFAULT_BLOCK_PREFIX_LENGTH6,
    },
    failures,
    cidr6,
  };
}

function check(olds: Props, news: Props): CheckResult {
  const six = ipv6Inputs(news);
  const inputs: Props = {
    ...six.inputs,
    cidr: news.cidr ?? DEFAULT_POOL_CIDR,
    blockPrefixLength: news.blockPrefixLength ?? DEFAULT_BLOCK_PREFIX_LENGTH,
    members: news.members ?? [],
    static: news.static ?? {},
    exclude: news.exclude ?? [],
  };
  const cidr6 = six.cidr6 as string | undefined;
  const blockPrefixLength6 = inputs.blockPrefixLength6 as number | undefined;
  if (hasUnknown(inputs)) {
    // Some input is an output of a resource not created yet: the allocation is computed on `up`, but what
    // is known is validated now.
    const known = [...shapeFailures(inputs), ...six.failures];
    if (known.length === 0) {
      const whole = (key: string, empty: unknown): unknown => (isUnknown(inputs[key]) ? empty : inputs[key]);
      known.push(
        ...checkPoolSpec({
          cidr: inputs.cidr as string,
          blockPrefixLength: inputs.blockPrefixLength as number,
          members: whole("members", []) as string[],
          static: asAllocationsLoose(whole("static", {})),
          exclude: whole("exclude", []) as string[],
          cidr6,
          blockPrefixLength6,
        }),
      );
    }
    return { inputs: { ...inputs, allocations: UNKNOWN }, failures: toCheckFailures(known) };
  }
  const failures = [...shapeFailures(inputs), ...six.failures];
  if (failures.length > 0) return { inputs, failures: toCheckFailures(failures) };
  try {
    const previous = asAllocations(olds.allocations);
    const members = new Set(inputs.members as string[]);
    // Members removed in this update keep their blocks out of reach for one update: the engine creates new
    // containers before it deletes old ones, so a freed block handed out at once would still be in use.
    const retired = Object.fromEntries(Object.entries(previous).filter(([name]) => !members.has(name)));
    const quarantine = Object.values(retired).flatMap((a) => [
      a.hostAddress,
      a.localAddress,
      ...(cidr6 !== undefined && a.hostAddress6 !== undefined && a.localAddress6 !== undefined
        ? [a.hostAddress6, a.localAddress6]
        : []),
    ]);
    const allocations = allocate(
      {
        cidr: inputs.cidr as string,
        blockPrefixLength: inputs.blockPrefixLength as number,
        members: inputs.members as string[],
        static: asAllocationsLoose(inputs.static),
        exclude: [...(inputs.exclude as string[]), ...quarantine],
        cidr6,
        blockPrefixLength6,
      },
      previous,
    );
    const capacity = poolCapacity(inputs.cidr as string, inputs.blockPrefixLength as number);
    const capacity6 = cidr6 === undefined ? {} : { capacity6: poolCapacity6(cidr6, blockPrefixLength6) };
    return { inputs: { ...inputs, allocations, capacity, ...capacity6 }, failures: [] };
  } catch (err) {
    if (err instanceof AllocationError) return { inputs, failures: toCheckFailures(err.failures) };
    throw err;
  }
}

const RULES = {
  replace: [],
  update: [
    "cidr",
    "blockPrefixLength",
    "members",
    "static",
    "exclude",
    "allocations",
    "ipv6",
    "cidr6",
    "blockPrefixLength6",
  ],
  deleteBeforeReplace: () => false,
} as const;

let counter = 0;

export const addressPoolHandler: Handler = {
  // Its outputs are its checked inputs (allocations are computed in check).
  inputsOf: (props) => props,
  check,
  diff: (_id, olds, news) => diffWith(RULES, olds, news),
  create: async (inputs) => ({
    id: `pool-${Date.now().toString(36)}-${process.pid.toString(36)}-${(counter++).toString(36)}`,
    outs: { ...inputs },
  }),
  // Nothing lives on a host: state is the truth.
  read: async (id, props) => ({ id, props }),
  update: async (_id, _olds, news) => ({ outs: { ...news } }),
  delete: async () => undefined,
};

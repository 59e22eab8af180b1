// Provider methods of `AddressPool`: a state-only resource. Allocation happens in `check`, from the previous
// allocations, so preview shows every address and addresses never move; nothing is done on any host.
import { display } from "../core/display";
import {
  Allocation,
  AllocationError,
  DEFAULT_BLOCK_PREFIX_LENGTH,
  DEFAULT_POOL_CIDR,
  allocate,
  checkPoolSpec,
  poolCapacity,
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
      result[name] = {
        hostAddress: (a as Props).hostAddress as string,
        localAddress: (a as Props).localAddress as string,
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

function shapeFailures(news: Props): Failure[] {
  const failures: Failure[] = [];
  if (news.cidr !== undefined && !isUnknown(news.cidr) && typeof news.cidr !== "string") {
    failures.push({
      property: "cidr",
      message: `cidr must be a string such as "10.233.0.0/16", got ${display(news.cidr)}`,
    });
  }
  if (
    news.blockPrefixLength !== undefined &&
    !isUnknown(news.blockPrefixLength) &&
    typeof news.blockPrefixLength !== "number"
  ) {
    failures.push({
      property: "blockPrefixLength",
      message: `blockPrefixLength must be a number from 24 to 31, got ${display(news.blockPrefixLength)}`,
    });
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
  for (const key of ["static"]) {
    const v = news[key];
    if (v !== undefined && !isUnknown(v) && (v === null || typeof v !== "object" || Array.isArray(v))) {
      failures.push({
        property: key,
        message: `${key} must be a map of name → { hostAddress, localAddress }, got ${display(v)}`,
      });
    }
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

function check(olds: Props, news: Props): CheckResult {
  const inputs: Props = {
    ...news,
    cidr: news.cidr ?? DEFAULT_POOL_CIDR,
    blockPrefixLength: news.blockPrefixLength ?? DEFAULT_BLOCK_PREFIX_LENGTH,
    members: news.members ?? [],
    static: news.static ?? {},
    exclude: news.exclude ?? [],
  };
  if (hasUnknown(inputs)) {
    // Some input is an output of a resource not created yet: the allocation is computed on `up`, but what
    // is known is validated now.
    const known = shapeFailures(inputs);
    if (known.length === 0) {
      const whole = (key: string, empty: unknown): unknown => (isUnknown(inputs[key]) ? empty : inputs[key]);
      known.push(
        ...checkPoolSpec({
          cidr: inputs.cidr as string,
          blockPrefixLength: inputs.blockPrefixLength as number,
          members: whole("members", []) as string[],
          static: asAllocationsLoose(whole("static", {})),
          exclude: whole("exclude", []) as string[],
        }),
      );
    }
    return { inputs: { ...inputs, allocations: UNKNOWN }, failures: toCheckFailures(known) };
  }
  const failures = shapeFailures(inputs);
  if (failures.length > 0) return { inputs, failures: toCheckFailures(failures) };
  try {
    const previous = asAllocations(olds.allocations);
    const members = new Set(inputs.members as string[]);
    // Members removed in this update keep their blocks out of reach for one update: the engine creates new
    // containers before it deletes old ones, so a freed block handed out at once would still be in use.
    const retired = Object.fromEntries(Object.entries(previous).filter(([name]) => !members.has(name)));
    const quarantine = Object.values(retired).flatMap((a) => [a.hostAddress, a.localAddress]);
    const allocations = allocate(
      {
        cidr: inputs.cidr as string,
        blockPrefixLength: inputs.blockPrefixLength as number,
        members: inputs.members as string[],
        static: asAllocations(inputs.static),
        exclude: [...(inputs.exclude as string[]), ...quarantine],
      },
      previous,
    );
    const capacity = poolCapacity(inputs.cidr as string, inputs.blockPrefixLength as number);
    return { inputs: { ...inputs, allocations, capacity }, failures: [] };
  } catch (err) {
    if (err instanceof AllocationError) return { inputs, failures: toCheckFailures(err.failures) };
    throw err;
  }
}

const RULES = {
  replace: [],
  update: ["cidr", "blockPrefixLength", "members", "static", "exclude", "allocations"],
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

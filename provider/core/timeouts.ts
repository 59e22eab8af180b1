// The `timeouts` input every host resource takes: how long one create, update or delete may take on the host,
// in seconds (the SSH command and the waits for the host lock inside it). Pulumi's `customTimeouts` never reach
// dynamic providers, so this is the one way to give a NixOS build more time.
import { display } from "./display";
import { Failure, isUnknown } from "./validate";

export type TimedOperation = "create" | "update" | "delete";

export interface Timeouts {
  readonly create: number;
  readonly update: number;
  readonly delete: number;
}

/** Five minutes for everything but what builds a NixOS system. */
export const DEFAULT_TIMEOUTS: Timeouts = { create: 300, update: 300, delete: 300 };

/** A nixos-driver Container evaluates and builds a system on create and update. */
export const NIXOS_BUILD_TIMEOUTS: Timeouts = { create: 1800, update: 1800, delete: 300 };

const LIMIT = 86_400;

/** Failures of a raw `timeouts` input: an object of whole seconds 1-86400 under create, update, delete. */
export function validateTimeouts(value: unknown): Failure[] {
  if (value === undefined || value === null || isUnknown(value)) return [];
  if (typeof value !== "object" || Array.isArray(value)) {
    return [
      {
        property: "timeouts",
        message: `timeouts must be an object such as { create: 1800 }, got ${display(value)}`,
      },
    ];
  }
  const failures: Failure[] = [];
  for (const [key, seconds] of Object.entries(value)) {
    const property = `timeouts.${key}`;
    if (!["create", "update", "delete"].includes(key)) {
      failures.push({ property, message: `${property} is not a timeout: use create, update or delete` });
    } else if (
      !isUnknown(seconds) &&
      !(Number.isInteger(seconds) && (seconds as number) >= 1 && (seconds as number) <= LIMIT)
    ) {
      failures.push({
        property,
        message: `${property} ${typeof seconds === "number" ? seconds : display(seconds)} is invalid: use a whole number of seconds from 1 to ${LIMIT}`,
      });
    }
  }
  return failures;
}

/** The timeouts of a checked (valid, known) input, over the defaults of its kind of resource. */
export function parseTimeouts(value: unknown, defaults: Timeouts = DEFAULT_TIMEOUTS): Timeouts {
  const given = value !== null && typeof value === "object" ? (value as Partial<Timeouts>) : {};
  return {
    create: given.create ?? defaults.create,
    update: given.update ?? defaults.update,
    delete: given.delete ?? defaults.delete,
  };
}

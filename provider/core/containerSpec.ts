// The typed, validated Container, parsed once from raw inputs: `check` reports its failures, and every later
// provider method works from the spec it returns (never from raw engine values).
import { display } from "./display";
import { CONTAINER_DRIVERS, ContainerDriverName } from "./types";
import {
  Failure,
  Parsed,
  bothOrNeither,
  isUnknown,
  optionalTexts,
  specWhenKnown,
  validateContainerName,
  validateFlakeRef,
  validateInterfaceAddress,
  validateOneOf,
} from "./validate";

/** A validated container. */
export interface ContainerSpec {
  readonly name: string;
  readonly driver: ContainerDriverName;
  /** Both or neither; neither = allocated on the host at create (nixos-container's layout), then kept. */
  readonly hostAddress?: string;
  readonly localAddress?: string;
  readonly config?: string;
  readonly configFile?: string;
  readonly flake?: string;
  readonly autoStart: boolean;
  /** Take over a container of this name already on the host instead of refusing it. */
  readonly adopt: boolean;
  /** `ve-<name>`. */
  readonly hostInterface: string;
  /** `eth0`. */
  readonly containerInterface: string;
}

/** The interface names that follow from a container's name (shown at preview). */
export function containerInterfaces(name: string): { hostInterface: string; containerInterface: string } {
  return { hostInterface: `ve-${name}`, containerInterface: "eth0" };
}

function booleanFailures(raw: Readonly<Record<string, unknown>>, key: string): Failure[] {
  const value = raw[key];
  return value !== undefined && !isUnknown(value) && typeof value !== "boolean"
    ? [{ property: key, message: `${key} must be true or false, got ${display(value)}` }]
    : [];
}

function validate(raw: Readonly<Record<string, unknown>>): Failure[] {
  const failures: Failure[] = [...validateContainerName(raw.name, "name")];
  if (
    raw.driver !== undefined &&
    !isUnknown(raw.driver) &&
    validateOneOf(raw.driver, "driver", CONTAINER_DRIVERS).length > 0
  ) {
    failures.push({
      property: "driver",
      message: `driver ${display(raw.driver)} is not supported: use "nixos" (the host's nixos-container command) or "netns" (a plain Linux network namespace, any host)`,
    });
  }
  failures.push(...validateInterfaceAddress(raw.hostAddress, "hostAddress", { optional: true }));
  failures.push(...validateInterfaceAddress(raw.localAddress, "localAddress", { optional: true }));
  failures.push(...bothOrNeither(raw, "hostAddress", "localAddress"));
  if (
    typeof raw.hostAddress === "string" &&
    !isUnknown(raw.hostAddress) &&
    raw.hostAddress === raw.localAddress
  ) {
    failures.push({
      property: "localAddress",
      message: `localAddress ${display(raw.localAddress)} equals hostAddress: the two ends of the veth need different addresses`,
    });
  }
  for (const key of ["config", "configFile"]) {
    if (raw[key] !== undefined && !isUnknown(raw[key]) && typeof raw[key] !== "string") {
      failures.push({ property: key, message: `${key} must be a string, got ${display(raw[key])}` });
    }
  }
  if (typeof raw.config === "string" && raw.config.includes("\0")) {
    failures.push({
      property: "config",
      message: "config contains a NUL byte, which no command argument can carry",
    });
  }
  if (typeof raw.configFile === "string" && !/^\/[A-Za-z0-9._+\-/]*$/.test(raw.configFile)) {
    failures.push({
      property: "configFile",
      message: `configFile ${display(raw.configFile)} is invalid: use an absolute path on the host made of letters, digits and . _ + - /`,
    });
  }
  failures.push(...validateFlakeRef(raw.flake, "flake", { optional: true }));
  const given = ["config", "configFile", "flake"].filter((k) => raw[k] !== undefined && raw[k] !== "");
  if (given.length > 1) {
    failures.push({
      property: given[1],
      message: `${given.join(" and ")} are set: use at most one of config, configFile and flake`,
    });
  }
  if (raw.driver === "netns" && given.length > 0) {
    failures.push({
      property: given[0],
      message: `${given[0]} is set but driver is "netns": NixOS configuration needs driver "nixos"`,
    });
  }
  failures.push(...booleanFailures(raw, "adopt"), ...booleanFailures(raw, "autoStart"));
  return failures;
}

/**
 * Validates raw Container inputs and returns the typed spec. Every offender is listed. With an input still
 * unknown (preview before a dependency exists) the known parts are validated and `spec` is undefined.
 */
export function parseContainerInputs(raw: Readonly<Record<string, unknown>>): Parsed<ContainerSpec> {
  const keys = [
    "name",
    "driver",
    "hostAddress",
    "localAddress",
    "config",
    "configFile",
    "flake",
    "autoStart",
    "adopt",
  ];
  // Valid and known: the casts below restate what validate just proved.
  return specWhenKnown(raw, keys, validate(raw), () => ({
    name: raw.name as string,
    driver: (raw.driver ?? "nixos") as ContainerDriverName,
    ...optionalTexts(raw, ["hostAddress", "localAddress", "config", "configFile", "flake"]),
    autoStart: raw.autoStart === true,
    adopt: raw.adopt === true,
    ...containerInterfaces(raw.name as string),
  }));
}

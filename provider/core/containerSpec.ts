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
  validateAddressWithPrefix,
  validateInterfaceAddress,
  validateInterfaceName,
  validateBoolean,
  validateOneOf,
  validateAddressWithPrefix6,
  validateInterfaceAddress6,
  canonicalIPv6,
} from "./validate";
import { tryParseIPv6 } from "./ipv6";

/** A validated container. */
export interface ContainerSpec {
  readonly name: string;
  readonly driver: ContainerDriverName;
  /**
   * Routed (no hostBridge): both or neither; neither = allocated on the host at create (nixos-container's
   * layout), then kept. Bridged: hostAddress is the container's default gateway (never set on the host) and
   * localAddress may carry a prefix (`192.168.50.5/24`); both optional.
   */
  readonly hostAddress?: string;
  readonly localAddress?: string;
  /**
   * IPv6, in canonical text (as `ip -6` prints it). Routed: both or neither, each end a /128 with routes both
   * ways and the default route inside via hostAddress6 (NixOS's container-init). Bridged: like the IPv4 pair
   * (localAddress6 may carry a prefix, hostAddress6 is the gateway inside).
   */
  readonly hostAddress6?: string;
  readonly localAddress6?: string;
  /** The host bridge the host end is enslaved to (NixOS `hostBridge`, `nixos-container --bridge`). */
  readonly hostBridge?: string;
  readonly config?: string;
  readonly configFile?: string;
  readonly flake?: string;
  readonly autoStart: boolean;
  /** Take over a container of this name already on the host instead of refusing it. */
  readonly adopt: boolean;
  /** `ve-<name>`, or `vb-<name>` when bridged (systemd-nspawn's names). */
  readonly hostInterface: string;
  /** `eth0`. */
  readonly containerInterface: string;
}

/** The interface names that follow from a container's name and bridge (shown at preview). */
export function containerInterfaces(
  name: string,
  hostBridge?: string,
): { hostInterface: string; containerInterface: string } {
  return { hostInterface: `${hostBridge ? "vb" : "ve"}-${name}`, containerInterface: "eth0" };
}

/** A bridged container's localAddress as its eth0 carries it: with the prefix given, else /32. */
export function withPrefix(address: string): string {
  return address.includes("/") ? address : `${address}/32`;
}

/**
 * Bridged (NixOS's container-init with HOST_BRIDGE): eth0 gets localAddress as given, and hostAddress is only
 * a route and the default route inside; nothing is set on the host, so nothing is allocated either.
 */
function bridgeFailures(raw: Readonly<Record<string, unknown>>): Failure[] {
  const failures = [...validateInterfaceName(raw.hostBridge, "hostBridge")];
  failures.push(...validateAddressWithPrefix(raw.localAddress, "localAddress"));
  failures.push(...validateInterfaceAddress(raw.hostAddress, "hostAddress", { optional: true }));
  failures.push(...validateAddressWithPrefix6(raw.localAddress6, "localAddress6"));
  failures.push(...validateInterfaceAddress6(raw.hostAddress6, "hostAddress6", { optional: true }));
  const given = (v: unknown) => v !== undefined && v !== "";
  if (given(raw.hostAddress6) && !given(raw.localAddress6)) {
    failures.push({
      property: "localAddress6",
      message:
        'localAddress6 is missing while hostAddress6 is set with hostBridge: hostAddress6 is then the default gateway, which needs a localAddress6 (e.g. "2001:db8:50::5/64")',
    });
  }
  if (given(raw.hostAddress) && !given(raw.localAddress)) {
    failures.push({
      property: "localAddress",
      message:
        "localAddress is missing while hostAddress is set with hostBridge: a bridged container's hostAddress is its default gateway, which needs a localAddress (with a prefix, e.g. \"192.168.50.5/24\"); set localAddress, or leave both out (DHCP from the LAN is then the container's own)",
    });
  }
  if (
    typeof raw.hostAddress === "string" &&
    !isUnknown(raw.hostAddress) &&
    typeof raw.localAddress === "string" &&
    raw.hostAddress === raw.localAddress.split("/")[0]
  ) {
    failures.push({
      property: "localAddress",
      message: `localAddress ${display(raw.localAddress)} is the gateway hostAddress: give the container an address of its own on the bridge's network`,
    });
  }
  return failures;
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
  if (raw.hostBridge !== undefined) {
    failures.push(...bridgeFailures(raw));
  } else {
    failures.push(...validateInterfaceAddress(raw.hostAddress, "hostAddress", { optional: true }));
    failures.push(...validateInterfaceAddress(raw.localAddress, "localAddress", { optional: true }));
    failures.push(...bothOrNeither(raw, "hostAddress", "localAddress"));
    failures.push(...validateInterfaceAddress6(raw.hostAddress6, "hostAddress6", { optional: true }));
    failures.push(...validateInterfaceAddress6(raw.localAddress6, "localAddress6", { optional: true }));
    failures.push(...bothOrNeither(raw, "hostAddress6", "localAddress6"));
    if (
      typeof raw.hostAddress6 === "string" &&
      typeof raw.localAddress6 === "string" &&
      !isUnknown(raw.hostAddress6) &&
      tryParseIPv6(raw.hostAddress6) !== undefined &&
      tryParseIPv6(raw.hostAddress6) === tryParseIPv6(raw.localAddress6)
    ) {
      failures.push({
        property: "localAddress6",
        message: `localAddress6 ${display(raw.localAddress6)} equals hostAddress6: the two ends of the veth need different addresses`,
      });
    }
  }
  if (
    raw.hostBridge === undefined &&
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
  failures.push(...validateBoolean(raw.adopt, "adopt"), ...validateBoolean(raw.autoStart, "autoStart"));
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
    "hostBridge",
    "hostAddress6",
    "localAddress6",
  ];
  // Valid and known: the casts below restate what validate just proved.
  return specWhenKnown(raw, keys, validate(raw), () => ({
    name: raw.name as string,
    driver: (raw.driver ?? "nixos") as ContainerDriverName,
    ...optionalTexts(raw, ["hostAddress", "localAddress", "hostBridge", "config", "configFile", "flake"]),
    ...Object.fromEntries(
      (["hostAddress6", "localAddress6"] as const)
        .filter((key) => typeof raw[key] === "string" && raw[key] !== "")
        .map((key) => [key, canonicalIPv6(raw[key] as string)]),
    ),
    autoStart: raw.autoStart === true,
    adopt: raw.adopt === true,
    ...containerInterfaces(raw.name as string, optionalTexts(raw, ["hostBridge"]).hostBridge),
  }));
}

// The typed, validated VethPair (an extra veth like NixOS `extraVeths`), parsed once from raw inputs.
import { display } from "./display";
import {
  Failure,
  Parsed,
  optionalTexts,
  specWhenKnown,
  validateAddressWithPrefix,
  validateContainerName,
  validateInterfaceAddress,
  validateInterfaceName,
  bothOrNeither,
  canonicalIPv6,
  validateAddressWithPrefix6,
  validateInterfaceAddress6,
} from "./validate";

/** A validated veth between the host and a running container. */
export interface VethPairSpec {
  readonly container: string;
  readonly hostInterface: string;
  readonly containerInterface: string;
  readonly hostAddress?: string;
  /** An address, or with a bridge an address with prefix (e.g. 192.168.50.5/24). */
  readonly localAddress?: string;
  /** IPv6 (canonical text): a routed pair, or with a bridge the container end only (with a prefix). */
  readonly hostAddress6?: string;
  readonly localAddress6?: string;
  readonly hostBridge?: string;
}

function validate(raw: Readonly<Record<string, unknown>>): Failure[] {
  const failures: Failure[] = [...validateContainerName(raw.container, "container")];
  failures.push(...validateInterfaceName(raw.hostInterface, "hostInterface"));
  failures.push(...validateInterfaceName(raw.containerInterface, "containerInterface"));
  if (typeof raw.container === "string" && raw.hostInterface === `ve-${raw.container}`) {
    failures.push({
      property: "hostInterface",
      message: `hostInterface ${display(raw.hostInterface)} is the container's own main veth: pick another name`,
    });
  }
  if (raw.containerInterface === "eth0" || raw.containerInterface === "lo") {
    failures.push({
      property: "containerInterface",
      message: `containerInterface ${display(raw.containerInterface)} is taken inside every container: pick another name, e.g. "eth1"`,
    });
  }
  failures.push(...validateInterfaceAddress(raw.hostAddress, "hostAddress", { optional: true }));
  if (raw.hostBridge !== undefined) {
    failures.push(...validateInterfaceName(raw.hostBridge, "hostBridge"));
    if (raw.hostAddress !== undefined) {
      failures.push({
        property: "hostAddress",
        message:
          "hostAddress and hostBridge are both set: a bridged veth has no host address (the bridge has it); set one or the other",
      });
    }
    failures.push(...validateAddressWithPrefix(raw.localAddress, "localAddress"));
    failures.push(...validateAddressWithPrefix6(raw.localAddress6, "localAddress6"));
    if (raw.hostAddress6 !== undefined) {
      failures.push({
        property: "hostAddress6",
        message:
          "hostAddress6 and hostBridge are both set: a bridged veth has no host address (the bridge has it); set one or the other",
      });
    }
  } else {
    failures.push(...validateInterfaceAddress6(raw.hostAddress6, "hostAddress6", { optional: true }));
    failures.push(...validateInterfaceAddress6(raw.localAddress6, "localAddress6", { optional: true }));
    failures.push(...bothOrNeither(raw, "hostAddress6", "localAddress6"));
    failures.push(...validateInterfaceAddress(raw.localAddress, "localAddress", { optional: true }));
    if ((raw.hostAddress === undefined) !== (raw.localAddress === undefined)) {
      failures.push({
        property: raw.hostAddress === undefined ? "hostAddress" : "localAddress",
        message: "set hostAddress and localAddress together, or hostBridge (with an optional localAddress)",
      });
    }
  }
  return failures;
}

/** Validates raw VethPair inputs; `spec` is undefined while any input is unknown or invalid. */
export function parseVethPairInputs(raw: Readonly<Record<string, unknown>>): Parsed<VethPairSpec> {
  const keys = [
    "container",
    "hostInterface",
    "containerInterface",
    "hostAddress",
    "localAddress",
    "hostBridge",
    "hostAddress6",
    "localAddress6",
  ];
  // Valid and known: the casts restate what validate just proved.
  return specWhenKnown(raw, keys, validate(raw), () => ({
    container: raw.container as string,
    hostInterface: raw.hostInterface as string,
    containerInterface: raw.containerInterface as string,
    ...optionalTexts(raw, ["hostAddress", "localAddress", "hostBridge"]),
    ...Object.fromEntries(
      (["hostAddress6", "localAddress6"] as const)
        .filter((key) => typeof raw[key] === "string" && raw[key] !== "")
        .map((key) => [key, canonicalIPv6(raw[key] as string)]),
    ),
  }));
}

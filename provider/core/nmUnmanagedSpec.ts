// The NetworkManager drop-in of an NmUnmanaged resource: validated inputs, its path and its exact content,
// computed in `check` so preview shows the file before anything is written.

import {
  Parsed,
  containsUnknown,
  validateList,
  validateNmDeviceSpec,
  validateResourceName,
} from "./validate";

/** A validated NmUnmanaged. */
export interface NmSpec {
  /** The resource name; it names the drop-in file. */
  readonly name: string;
  /** NetworkManager device specs, in input order without duplicates. */
  readonly devices: string[];
}

const NM_NAME_MAX_LENGTH = 41;
const DEFAULT_DEVICES = ["interface-name:ve-*"];

/** Where the drop-in lives; NetworkManager reads /etc/NetworkManager/conf.d/*.conf after its main file. */
export function nmDropInPath(id: string): string {
  return `/etc/NetworkManager/conf.d/pulumi-nixos-containers-${id}.conf`;
}

/**
 * Validates raw NmUnmanaged inputs (`name` is the resource name). With an unknown input the known parts
 * are still validated and `spec` is undefined: the caller shows the content as unknown.
 */
export function parseNmInputs(raw: Readonly<Record<string, unknown>>): Parsed<NmSpec> {
  const failures = [
    ...validateResourceName(
      raw.name,
      "name",
      NM_NAME_MAX_LENGTH,
      "it becomes part of the drop-in's file name; give the resource a shorter name",
    ),
    ...validateList(raw.devices, "devices", (item, property) => validateNmDeviceSpec(item, property), {
      optional: true,
    }),
  ];
  if (Array.isArray(raw.devices) && raw.devices.length === 0) {
    failures.push({
      property: "devices",
      message:
        'devices is empty: list at least one NetworkManager device spec (e.g. "interface-name:ve-*"), ' +
        "or leave devices unset for that default",
    });
  }
  if (failures.length > 0 || containsUnknown(raw.name) || containsUnknown(raw.devices)) {
    return { failures };
  }
  // Valid and known: the casts restate what the validators just proved.
  const devices =
    raw.devices === undefined || raw.devices === null ? DEFAULT_DEVICES : (raw.devices as string[]);
  return { spec: { name: raw.name as string, devices: [...new Set(devices)] }, failures };
}

/**
 * The drop-in's content. It appends with `unmanaged-devices+=` rather than setting the key: a later file's
 * `unmanaged-devices=` replaces the whole list, which would silently hand the host's own unmanaged devices
 * (NixOS `networking.networkmanager.unmanaged`, other drop-ins, other NmUnmanaged resources) back to
 * NetworkManager. Specs are joined with ";" (NetworkManager.conf(5) accepts "," or ";").
 */
export function renderNmConf(spec: NmSpec): string {
  return (
    `# Managed by pulumi-nixos-containers (resource ${spec.name}): NetworkManager leaves these devices alone.\n` +
    "[keyfile]\n" +
    `unmanaged-devices+=${spec.devices.join(";")}\n`
  );
}

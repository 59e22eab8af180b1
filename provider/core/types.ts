// The names every layer shares: resource types, container drivers and NAT backends, each one exported type
// (used by the provider shims, the resource args, the runtime, the test harness and the tests).

/** The host-backed resource types: each has one definition in runtime/ and scripts in host/. */
const HOST_RESOURCE_TYPES = ["Container", "VethPair", "NatRule", "NmUnmanaged", "NetworkdUnmanaged"] as const;
export type HostResourceType = (typeof HOST_RESOURCE_TYPES)[number];

/** Every resource type; the token is `pulumi-nodejs:dynamic/nixos:<ResourceType>`. */
export const RESOURCE_TYPES = ["AddressPool", "HostIdentity", ...HOST_RESOURCE_TYPES] as const;
export type ResourceType = (typeof RESOURCE_TYPES)[number];

/** How a Container is made: the host's `nixos-container`, or a plain Linux network namespace. */
export const CONTAINER_DRIVERS = ["nixos", "netns"] as const;
export type ContainerDriverName = (typeof CONTAINER_DRIVERS)[number];

/** Where a NatRule's rules live: a table of our own, or chains of our own. */
export const NAT_BACKENDS = ["nftables", "iptables"] as const;
export type NatBackend = (typeof NAT_BACKENDS)[number];

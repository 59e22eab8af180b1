// pulumi-nixos-containers: Pulumi dynamic resources for NixOS container networking on remote hosts over SSH.
export { AddressPool, AddressPair, AddressPoolArgs } from "./resources/addressPool";
export { Container, ContainerArgs } from "./resources/container";
export { VethPair, VethPairArgs } from "./resources/vethPair";
export {
  ConnectionArgs,
  ConnectionInput,
  ProxyConnectionArgs,
  TimeoutsArgs,
} from "./resources/connectionArgs";
export { ContainerDriverName, NatBackend, ResourceType } from "./core/types";
export { NatRule, NatRuleArgs, ForwardPortArgs } from "./resources/natRule";
export { NmUnmanaged, NmUnmanagedArgs } from "./resources/nmUnmanaged";
export { NetworkdUnmanaged, NetworkdUnmanagedArgs } from "./resources/networkdUnmanaged";
export { HostIdentity, HostIdentityArgs, pinnedConnection } from "./resources/hostIdentity";
export {
  Host,
  HostArgs,
  HostContainerArgs,
  HostVethArgs,
  HostNatArgs,
  HostPoolArgs,
  HostForwardPortArgs,
  HostPlan,
  ContainerPlan,
  natNameFor,
  validateHostName,
} from "./resources/host";
export {
  Fleet,
  FleetArgs,
  FleetDefaults,
  FleetHostArgs,
  FleetConnectionArgs,
  fleetConnection,
} from "./resources/fleet";

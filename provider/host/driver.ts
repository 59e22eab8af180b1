// The contract between the Container resource and the two ways of making a container on a host, plus what
// both drivers share: the typed container spec and the host-side scripts' common parts.

/** A validated container, as `check` computed it. */
export interface ContainerSpec {
  readonly name: string;
  readonly driver: "nixos" | "netns";
  /** Both or neither; neither = allocated on the host at create (nixos-container's layout), then kept. */
  readonly hostAddress?: string;
  readonly localAddress?: string;
  readonly config?: string;
  readonly configFile?: string;
  readonly flake?: string;
  readonly autoStart: boolean;
  readonly hostInterface: string;
  readonly containerInterface: string;
}

/** What is really on the host for one container. */
export interface ObservedContainer {
  readonly exists: boolean;
  readonly running: boolean;
  readonly hostAddress?: string;
  readonly localAddress?: string;
  /** nixos driver: the conf file (its layout is detected per host). */
  readonly confPath?: string;
  readonly autoStart?: boolean;
}

/** One driver: each method returns ONE script, run in one round trip. */
export interface ContainerDriver {
  /** Checks name and addresses are free (under the host locks), then creates and starts; rolls back on failure. */
  createScript(spec: ContainerSpec): string;
  /** Brings an existing container back to the spec (addresses, running), checking new addresses are free. */
  convergeScript(spec: ContainerSpec, previous: { hostAddress: string; localAddress: string }): string;
  readScript(spec: Pick<ContainerSpec, "name" | "hostInterface">): string;
  parseRead(stdout: string): ObservedContainer;
  /** Removes everything the container had; succeeds when it is already gone. */
  deleteScript(spec: Pick<ContainerSpec, "name" | "hostInterface">): string;
}

/**
 * Runs `ip` for the container's network namespace: a named one (netns driver, the lab's stand-in) or, for a
 * real NixOS container run by systemd-nspawn, the namespace of its leader process.
 */
export const IN_CONTAINER = String.raw`cip() {
  if [ -e "/run/netns/$NAME" ]; then
    ip -n "$NAME" "$@"
  else
    leader=$(machinectl show "$NAME" -p Leader --value 2>/dev/null || true)
    [ -n "$leader" ] || { echo "PNC-NOTRUNNING container $NAME has no network namespace (is it running?)" >&2; return 1; }
    nsenter -t "$leader" -n ip "$@"
  fi
}
`;

/** Reports the live addresses of the veth (host side and container side) as PNC-RESULT lines. */
export const REPORT_LIVE = String.raw`report_live() {
  if ip link show dev "$HIF" >/dev/null 2>&1; then
    echo "PNC-RESULT hostLink=1"
    echo "PNC-RESULT hostAddr=$(ip -o -4 addr show dev "$HIF" | awk '{ split($4, a, "/"); print a[1]; exit }')"
  else
    echo "PNC-RESULT hostLink=0"
  fi
  la=$( (cip -o -4 addr show dev eth0 2>/dev/null || true) | awk '{ split($4, a, "/"); print a[1]; exit }')
  echo "PNC-RESULT localAddr=$la"
}
`;

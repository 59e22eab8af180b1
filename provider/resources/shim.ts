// Provider shims: each method is one line that loads this package's runtime at call time. The serialized
// text Pulumi stores is therefore tiny and stable, every resource type in the provider process shares one
// runtime (and one SSH pool), and deletes always run the installed code (see the dynamic-provider reference).
import * as pulumi from "@pulumi/pulumi";
import { ResourceType } from "../core/types";
import { ConnectionInput } from "./connectionArgs";

/** What `persist: true` writes on the host (see HostResource.persistence). */
export interface PersistenceOutput {
  readonly unit: string;
  readonly unitPath: string;
  readonly unitText: string;
  readonly scriptPath: string;
  readonly scriptText: string;
}

/** The runtime's methods, as the shims call them. */
interface Runtime {
  check(type: string, olds: unknown, news: unknown): Promise<pulumi.dynamic.CheckResult>;
  diff(type: string, id: string, olds: unknown, news: unknown): Promise<pulumi.dynamic.DiffResult>;
  create(type: string, inputs: unknown): Promise<pulumi.dynamic.CreateResult>;
  read(type: string, id: string, props: unknown): Promise<pulumi.dynamic.ReadResult>;
  update(type: string, id: string, olds: unknown, news: unknown): Promise<pulumi.dynamic.UpdateResult>;
  delete(type: string, id: string, props: unknown): Promise<void>;
}

/**
 * Loads `pulumi-nixos-containers/runtime` as seen from the provider process's working directory (the Pulumi
 * project): the project's own node_modules, or this package itself when the project is this repository.
 * `PULUMI_NIXOS_CONTAINERS_RUNTIME` overrides the location (an absolute path), for unusual layouts.
 */
function loadRuntime(): Runtime {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { createRequire } = require("node:module");
  const override = process.env.PULUMI_NIXOS_CONTAINERS_RUNTIME;
  const from = createRequire(process.cwd() + "/");
  return from(override || "pulumi-nixos-containers/runtime");
}

export function makeProvider(type: ResourceType): pulumi.dynamic.ResourceProvider {
  return {
    check: async (olds, news) => loadRuntime().check(type, olds, news),
    diff: async (id, olds, news) => loadRuntime().diff(type, id, olds, news),
    create: async (inputs) => loadRuntime().create(type, inputs),
    read: async (id, props) => loadRuntime().read(type, id, props),
    update: async (id, olds, news) => loadRuntime().update(type, id, olds, news),
    delete: async (id, props) => loadRuntime().delete(type, id, props),
  };
}

/**
 * What every resource that works on a host shares: its provider shim, the connection as a secret output, and
 * the bookkeeping it keeps in state (declared here, so every class that stores it says so).
 */
export abstract class HostResource extends pulumi.dynamic.Resource {
  /** Bookkeeping: the host key fingerprint seen at create; a host presenting another key is refused. */
  declare readonly hostKeyFingerprint: pulumi.Output<string>;
  /**
   * With `persist: true`, the systemd unit and script of ours that restore the resource after a reboot:
   * `{ unit, unitPath, unitText, scriptPath, scriptText }`, known at preview. Absent for resources whose
   * host state persists by itself.
   */
  declare readonly persistence: pulumi.Output<PersistenceOutput | undefined>;
  /** Whether that unit is on the host as planned: "current", or after a refresh "missing"/"stale". */
  declare readonly persisted: pulumi.Output<"current" | "missing" | "stale" | undefined>;

  /**
   * @param args the resource's inputs (a copy is registered: the engine writes `__provider` into it)
   * @param outputs output keys that are no inputs: registered as undefined, for the engine to fill
   */
  protected constructor(
    type: Exclude<ResourceType, "AddressPool">,
    name: string,
    args: { readonly connection: ConnectionInput; readonly name?: pulumi.Input<string> },
    outputs: readonly string[],
    opts: pulumi.CustomResourceOptions | undefined,
  ) {
    const props = {
      ...Object.fromEntries(
        [...outputs, "hostKeyFingerprint", "persistence", "persisted"].map((key) => [key, undefined]),
      ),
      ...args,
      // Credentials are secret in the inputs too (state, `preview --diff`), even when given as plain strings.
      connection: pulumi.secret(args.connection),
    };
    super(makeProvider(type), name, props, withSecretConnection(opts), "nixos", type);
  }
}

/** Options every host resource gets: the connection (credentials) is a secret output as well as an input. */
function withSecretConnection(opts: pulumi.CustomResourceOptions | undefined): pulumi.CustomResourceOptions {
  return { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "connection"] };
}

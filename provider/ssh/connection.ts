// The plain (resolved) shape of @pulumi/command's remote.ConnectionArgs, parsed once from raw provider inputs,
// with the same defaults as @pulumi/command so users can pass the object they already have.

export interface ProxySpec {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password?: string;
  readonly privateKey?: string;
  readonly privateKeyPassword?: string;
  readonly agentSocketPath?: string;
  readonly hostKey?: string;
  readonly dialErrorLimit: number;
  readonly perDialTimeout: number;
  /** Run every command as root through `sudo` (the target only: a jump host runs no commands). */
  readonly sudo?: boolean;
  /** sudo's password for `user`, sent on stdin only when sudo asks. */
  readonly sudoPassword?: string;
  /** The jump host this one is reached through (jump hosts chain: each may have its own). */
  readonly proxy?: ProxySpec;
}

export type ConnectionSpec = ProxySpec;

/** How many jump hosts a chain may have. */
const MAX_HOPS = 8;

const CONNECTION_DEFAULTS = {
  port: 22,
  user: "root",
  dialErrorLimit: 10,
  perDialTimeout: 15,
} as const;

const STRING_FIELDS = [
  "host",
  "user",
  "password",
  "privateKey",
  "privateKeyPassword",
  "agentSocketPath",
  "hostKey",
  "sudoPassword",
];
const KNOWN_FIELDS = new Set([...STRING_FIELDS, "port", "dialErrorLimit", "perDialTimeout", "proxy", "sudo"]);

/** A DNS name or an IPv4/IPv6 literal: nothing a shell or ssh option parser could misread. */
const HOST_PATTERN =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?|\[?[0-9A-Fa-f:.]+\]?)$/;

/**
 * Validates a raw `connection` input and lists every problem, naming the property (e.g. `connection.port`)
 * and the value. Secret fields are never echoed.
 */
export function validateConnection(raw: unknown, property = "connection"): string[] {
  const problems: string[] = [];
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    return [
      `${property} must be an object with at least "host" (the shape of @pulumi/command's ConnectionArgs)`,
    ];
  }
  const obj = raw as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!KNOWN_FIELDS.has(key)) {
      problems.push(
        `${property}.${key} is not a connection field: use one of ${[...KNOWN_FIELDS].join(", ")}`,
      );
    }
  }
  for (const key of STRING_FIELDS) {
    if (obj[key] !== undefined && typeof obj[key] !== "string") {
      problems.push(`${property}.${key} must be a string, got ${typeof obj[key]}`);
    }
  }
  if (typeof obj.host !== "string" || obj.host === "") {
    problems.push(`${property}.host is required: the address or DNS name of the SSH server`);
  } else if (!HOST_PATTERN.test(obj.host) || obj.host.startsWith("-")) {
    problems.push(`${property}.host ${JSON.stringify(obj.host)} is invalid: use a DNS name or an IP address`);
  }
  if (typeof obj.user === "string" && !/^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/.test(obj.user)) {
    problems.push(
      `${property}.user ${JSON.stringify(obj.user)} is invalid: use a Unix user name such as "root"`,
    );
  }
  checkInteger(obj.port, `${property}.port`, 1, 65535, problems);
  checkInteger(obj.dialErrorLimit, `${property}.dialErrorLimit`, -1, 1000, problems);
  checkInteger(obj.perDialTimeout, `${property}.perDialTimeout`, 0, 3600, problems);
  if (obj.privateKeyPassword !== undefined && obj.privateKey === undefined) {
    problems.push(
      `${property}.privateKeyPassword is set but ${property}.privateKey is not: set both or neither`,
    );
  }
  if (typeof obj.hostKey === "string" && obj.hostKey !== "" && parseHostKeySpec(obj.hostKey) === undefined) {
    problems.push(
      `${property}.hostKey ${JSON.stringify(obj.hostKey.slice(0, 80))} is invalid: use the host's public key line ` +
        `("ssh-ed25519 AAAA…", as in known_hosts or /etc/ssh/ssh_host_ed25519_key.pub) or its "SHA256:…" fingerprint`,
    );
  }
  if (obj.sudo !== undefined && typeof obj.sudo !== "boolean") {
    problems.push(`${property}.sudo must be true or false, got ${JSON.stringify(obj.sudo)}`);
  }
  if (obj.sudoPassword !== undefined && obj.sudo !== true) {
    problems.push(
      `${property}.sudoPassword is set but ${property}.sudo is not true: set sudo: true to use it`,
    );
  }
  if (property.endsWith(".proxy") && (obj.sudo !== undefined || obj.sudoPassword !== undefined)) {
    problems.push(
      `${property}.sudo is not supported: a jump host only forwards the connection, it runs no commands`,
    );
  }
  if (obj.proxy !== undefined) {
    if (property.split(".proxy").length > MAX_HOPS) {
      problems.push(`${property}.proxy: at most ${MAX_HOPS} jump hosts in a chain`);
    } else {
      problems.push(...validateConnection(obj.proxy, `${property}.proxy`));
    }
  }
  return problems;
}

function checkInteger(value: unknown, property: string, min: number, max: number, problems: string[]): void {
  if (value === undefined) return;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    problems.push(
      `${property} ${JSON.stringify(value)} is invalid: use a whole number from ${min} to ${max}`,
    );
  }
}

/** Parses a raw, already validated connection into a spec with @pulumi/command's defaults applied. */
export function parseConnection(raw: unknown): ConnectionSpec {
  const problems = validateConnection(raw);
  if (problems.length > 0) throw new Error(problems.join("\n"));
  return parseProxy(raw as Record<string, unknown>);
}

function parseProxy(obj: Record<string, unknown>): ProxySpec {
  const str = (key: string): string | undefined =>
    typeof obj[key] === "string" && obj[key] !== "" ? (obj[key] as string) : undefined;
  const spec: ProxySpec = {
    host: obj.host as string,
    port: (obj.port as number | undefined) ?? CONNECTION_DEFAULTS.port,
    user: str("user") ?? CONNECTION_DEFAULTS.user,
    password: str("password"),
    privateKey: str("privateKey"),
    privateKeyPassword: str("privateKeyPassword"),
    agentSocketPath: str("agentSocketPath") ?? process.env.SSH_AUTH_SOCK,
    hostKey: str("hostKey"),
    dialErrorLimit: (obj.dialErrorLimit as number | undefined) ?? CONNECTION_DEFAULTS.dialErrorLimit,
    perDialTimeout: (obj.perDialTimeout as number | undefined) ?? CONNECTION_DEFAULTS.perDialTimeout,
    sudo: obj.sudo === true ? true : undefined,
    sudoPassword: str("sudoPassword"),
    proxy: obj.proxy === undefined ? undefined : parseProxy(obj.proxy as Record<string, unknown>),
  };
  // Drop undefined fields so specs compare and hash the same however they were written.
  return Object.fromEntries(Object.entries(spec).filter(([, v]) => v !== undefined)) as unknown as ProxySpec;
}

/** `user@host:port`, the name of a target in messages: never carries a credential. */
export function describeTarget(spec: ProxySpec): string {
  return `${spec.user}@${spec.host}:${spec.port}`;
}

export type HostKeySpec =
  | { readonly kind: "key"; readonly blob: Buffer }
  | { readonly kind: "fingerprint"; readonly fingerprint: string };

/** Parses `hostKey`: a public key line (`type base64 [comment]`) or a `SHA256:` fingerprint. */
export function parseHostKeySpec(text: string): HostKeySpec | undefined {
  const trimmed = text.trim();
  if (/^SHA256:[A-Za-z0-9+/]{43}=?$/.test(trimmed)) {
    return { kind: "fingerprint", fingerprint: trimmed.replace(/=$/, "") };
  }
  const fields = trimmed.split(/\s+/);
  // known_hosts lines may start with the host name(s): take the first field that looks like a key type.
  const at = fields.findIndex((f) => /^(ssh-|ecdsa-|sk-)/.test(f));
  if (at < 0 || fields.length < at + 2) return undefined;
  const b64 = fields[at + 1];
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return undefined;
  const blob = Buffer.from(b64, "base64");
  // The blob starts with the length-prefixed key type: it must match the type named in the line.
  if (blob.length < 4) return undefined;
  const typeLength = blob.readUInt32BE(0);
  if (blob.subarray(4, 4 + typeLength).toString("latin1") !== fields[at]) return undefined;
  return { kind: "key", blob };
}

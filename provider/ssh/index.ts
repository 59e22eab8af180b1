// The SSH layer used by every resource: parsing connections, the shared pool, quoting and typed errors.
export * from "./connection";
export * from "./errors";
export * from "./hostKey";
export * from "./pool";
export * from "./quote";

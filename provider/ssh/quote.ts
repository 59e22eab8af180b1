// The one quoting function: turns an argument vector into a POSIX shell command line.
// Every remote command in this package is built with it; user input is never pasted into a shell string.

/** Characters that need no quoting in any POSIX shell context (no globbing, expansion or word splitting). */
const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * Quotes one argument for a POSIX shell. Single quotes disable every expansion; an embedded single quote is
 * closed, escaped and reopened. NUL cannot be passed through argv at all, so it is rejected, not mangled.
 */
export function quoteArg(arg: string): string {
  if (arg.includes("\0")) {
    throw new Error(
      `argument ${JSON.stringify(arg)} contains a NUL byte, which no command argument can carry`,
    );
  }
  if (arg === "") return "''";
  if (SAFE.test(arg)) return arg;
  return "'" + arg.replace(/'/g, "'\\''") + "'";
}

/** Quotes an argument vector into one command line: `["echo", "a b"]` → `echo 'a b'`. */
export function quoteArgv(argv: readonly string[]): string {
  if (argv.length === 0) throw new Error("cannot run an empty command: the argument vector has no elements");
  return argv.map(quoteArg).join(" ");
}

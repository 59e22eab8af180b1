// Preloaded (node --require) into each provider host the harness spawns: exit when the harness process dies,
// however it dies (stdin is a pipe from the harness; EOF means the parent is gone). Leaves the host untouched.
"use strict";
process.stdin.on("end", () => process.exit(0));
process.stdin.on("error", () => process.exit(0));
process.stdin.resume();

// Summarises a .cpuprofile (as `npm run bench -- --cpu-prof` writes them): self time per function (top 25),
// per file and per call chain. Usage: node bench/.build/bench/profileSummary.js FILE (after npm run bench)
import * as fs from "node:fs";
import type { Profiler } from "node:inspector";

type ProfileNode = Profiler.ProfileNode;

const file = process.argv[2];
if (file === undefined) {
  console.error("usage: node bench/.build/bench/profileSummary.js FILE.cpuprofile");
  process.exit(2);
}
const prof = JSON.parse(fs.readFileSync(file, "utf8")) as Profiler.Profile;
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const self = new Map<ProfileNode, number>();
const samples = prof.samples ?? [];
const dt = prof.timeDeltas ?? [];
for (let i = 0; i < samples.length; i++) {
  const n = byId.get(samples[i]);
  if (n === undefined) continue; // not in the profile's node list: nothing to attribute it to
  self.set(n, (self.get(n) ?? 0) + (dt[i] ?? 0));
}
const total = [...self.values()].reduce((a, b) => a + b, 0);
const agg = (key: (n: ProfileNode) => string): [string, number][] => {
  const m = new Map<string, number>();
  for (const [n, t] of self) m.set(key(n), (m.get(key(n)) ?? 0) + t);
  return [...m].sort((a, b) => b[1] - a[1]);
};
const short = (u: string): string =>
  u.replace(/^.*node_modules\//, "").replace(/^.*\/bench\/\.build\//, "") || "(native)";
console.log(`total sampled ${(total / 1e6).toFixed(2)} s`);
console.log("\nself time by function:");
for (const [k, t] of agg(
  (n) => `${n.callFrame.functionName || "(anon)"} ${short(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`,
).slice(0, 25)) {
  console.log(`${((100 * t) / total).toFixed(1).padStart(5)}%  ${k}`);
}
console.log("\nself time by file / package:");
for (const [k, t] of agg((n) => short(n.callFrame.url).split("/").slice(0, 2).join("/")).slice(0, 15)) {
  console.log(`${((100 * t) / total).toFixed(1).padStart(5)}%  ${k}`);
}

// Who calls the busiest non-idle functions (self time by caller chain, 4 frames).
const parent = new Map<number, ProfileNode>();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n);
const chain = (n: ProfileNode): string => {
  const out: string[] = [];
  for (let p: ProfileNode | undefined = n; p && out.length < 5; p = parent.get(p.id)) {
    if (p.callFrame.functionName)
      out.push(
        `${p.callFrame.functionName}(${short(p.callFrame.url).split("/").pop()}:${p.callFrame.lineNumber + 1})`,
      );
  }
  return out.join(" < ");
};
console.log("\nbusiest call chains:");
for (const [k, t] of agg((n) =>
  ["(idle)", "(program)", "(garbage collector)"].includes(n.callFrame.functionName)
    ? n.callFrame.functionName
    : chain(n),
).slice(0, 12)) {
  console.log(`${((100 * t) / total).toFixed(1).padStart(5)}%  ${k}`);
}

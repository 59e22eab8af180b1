// Preloaded (NODE_OPTIONS=--require) into the provider host by `npm run bench -- --cpu-prof`: records a V8 CPU
// profile of the whole process and writes it to $PNC_BENCH_CPU_PROF_DIR/provider-<pid>.cpuprofile when the
// process is told to stop (SIGTERM, as the harness does) or its stdin closes. (--cpu-prof itself is not
// allowed in NODE_OPTIONS.) Open the file in Chrome DevTools, or summarise it with bench/profileSummary.ts
// (node bench/.build/bench/profileSummary.js FILE).
"use strict";
const inspector = require("node:inspector");
const fs = require("node:fs");
const path = require("node:path");

const dir = process.env.PNC_BENCH_CPU_PROF_DIR;
if (dir) {
  const session = new inspector.Session();
  session.connect();
  session.post("Profiler.enable");
  session.post("Profiler.setSamplingInterval", { interval: 500 });
  session.post("Profiler.start");
  let done = false;
  const stop = () => {
    if (done) return;
    done = true;
    session.post("Profiler.stop", (err, res) => {
      if (!err) {
        fs.mkdirSync(dir, { recursive: true });
        fs.writeFileSync(path.join(dir, `provider-${process.pid}.cpuprofile`), JSON.stringify(res.profile));
      }
      process.exit(0);
    });
  };
  process.on("SIGTERM", stop);
  process.stdin.on("end", stop);
}

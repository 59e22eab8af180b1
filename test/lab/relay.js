#!/usr/bin/env node
// TCP relay for the local lab: listens on LISTEN, connects each client to TARGET, and delays every chunk by
// DELAY ms in each direction, preserving order (a user-space stand-in for `tc netem`, which this kernel
// lacks). Plain Node, no dependencies.
//
//   node relay.js --listen 127.0.0.1:40011 --target 198.18.0.11:22 --delay 10 [--pidfile FILE] [--lab DIR]
"use strict";

const net = require("net");
const fs = require("fs");

function parseArgs(argv) {
  const opts = { listen: "", target: "", delay: 0, pidfile: "" };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (a === "--listen") opts.listen = v;
    else if (a === "--target") opts.target = v;
    else if (a === "--delay") opts.delay = Number(v);
    else if (a === "--pidfile") opts.pidfile = v;
    else if (a === "--lab") {
      /* only marks the command line as the lab's */
    } else throw new Error(`unknown argument ${a}`);
    i++;
  }
  if (!opts.listen || !opts.target || !Number.isFinite(opts.delay) || opts.delay < 0) {
    throw new Error("usage: relay.js --listen HOST:PORT --target HOST:PORT --delay MS");
  }
  return opts;
}

function hostPort(s) {
  const i = s.lastIndexOf(":");
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
}

// Forwards src -> dst, each chunk (and the final end) delivered `delay` ms after it arrived, in order.
function pipeDelayed(src, dst, delay) {
  const queue = [];
  let timer = null;
  let paused = false;
  const flush = () => {
    timer = null;
    const now = Date.now();
    while (queue.length && queue[0].due <= now) {
      const item = queue.shift();
      if (dst.destroyed) return;
      if (item.end) {
        dst.end();
        return;
      }
      if (!dst.write(item.data) && !paused) {
        paused = true;
        src.pause();
        dst.once("drain", () => {
          paused = false;
          src.resume();
        });
      }
    }
    if (queue.length) timer = setTimeout(flush, Math.max(0, queue[0].due - Date.now()));
  };
  const push = (item) => {
    queue.push(item);
    if (timer === null) timer = setTimeout(flush, Math.max(0, queue[0].due - Date.now()));
  };
  src.on("data", (data) => push({ due: Date.now() + delay, data }));
  src.on("end", () => push({ due: Date.now() + delay, end: true }));
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const listen = hostPort(opts.listen);
  const target = hostPort(opts.target);
  const server = net.createServer((client) => {
    client.setNoDelay(true);
    const upstream = net.connect({ host: target.host, port: target.port });
    upstream.setNoDelay(true);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", close);
    upstream.on("error", close);
    client.on("close", () => setTimeout(() => upstream.destroy(), opts.delay + 50).unref());
    upstream.on("close", () => setTimeout(() => client.destroy(), opts.delay + 50).unref());
    pipeDelayed(client, upstream, opts.delay);
    pipeDelayed(upstream, client, opts.delay);
  });
  server.on("error", (err) => {
    console.log(`error ${err.message}`);
    process.exit(1);
  });
  server.listen(listen.port, listen.host, () => {
    if (opts.pidfile) fs.writeFileSync(opts.pidfile, `${process.pid}\n`);
    console.log(`listening ${opts.listen} -> ${opts.target} delay ${opts.delay} ms`);
  });
  const stop = () => process.exit(0);
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

try {
  main();
} catch (err) {
  console.log(`error ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}

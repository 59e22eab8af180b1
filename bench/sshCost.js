// Measures, on the lab, what a new SSH connection costs against a command on an already open one (the SSH
// layer's pool), directly and through the lab's latency relay. Usage: node bench/sshCost.js [rounds]
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { SshPool, parseConnection } = require("../bin/ssh");

const rounds = Number(process.argv[2] ?? 20);
const labDir = process.env.PNC_LAB_DIR ?? "/tmp/pnc-lab";
const lab = JSON.parse(fs.readFileSync(path.join(labDir, "lab.json"), "utf8"));

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function measure(label, conn) {
  const fresh = [];
  for (let i = 0; i < rounds; i++) {
    const pool = new SshPool();
    const t = process.hrtime.bigint();
    await pool.host(conn).exec(["true"]);
    fresh.push(Number(process.hrtime.bigint() - t) / 1e6);
    pool.closeAll();
  }
  const pool = new SshPool();
  const host = pool.host(conn);
  await host.exec(["true"]);
  const reused = [];
  for (let i = 0; i < rounds * 5; i++) {
    const t = process.hrtime.bigint();
    await host.exec(["true"]);
    reused.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  pool.closeAll();
  const f = median(fresh);
  const r = median(reused);
  console.log(
    `${label.padEnd(28)} new connection + command: ${f.toFixed(1)} ms   command on open connection: ${r.toFixed(1)} ms   ratio ${(f / r).toFixed(1)}x`,
  );
}

(async () => {
  const h = lab.hosts.find((x) => x.name === "h1");
  const key = fs.readFileSync(h.privateKeyPath, "utf8");
  await measure("h1 direct", parseConnection({ host: h.address, port: h.port, privateKey: key }));
  if (h.relayPort) {
    await measure(
      `h1 via relay (+${lab.latencyMs} ms)`,
      parseConnection({ host: "127.0.0.1", port: h.relayPort, privateKey: key }),
    );
  }
})().catch((err) => {
  console.error(err);
  process.exit(1);
});

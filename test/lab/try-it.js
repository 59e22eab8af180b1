// Runs one command on every lab host through this package's SSH layer (the shared pool, key auth, the jump
// host for hj) and shows the host key each one presented. Usage: node test/lab/try-it.js (lab up first).
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { sharedPool, parseConnection } = require("../../bin/ssh");

const labFile = path.join(process.env.PNC_LAB_DIR ?? "/tmp/pnc-lab", "lab.json");
if (!fs.existsSync(labFile)) {
  console.error(
    `no lab is up (${labFile} is missing): run 'bash test/lab/lab up 3 --nm h2 --jump --nixos h3' as root`,
  );
  process.exit(1);
}
const lab = JSON.parse(fs.readFileSync(labFile, "utf8"));

(async () => {
  const byName = Object.fromEntries(lab.hosts.map((h) => [h.name, h]));
  for (const h of lab.hosts) {
    const key = fs.readFileSync(h.privateKeyPath, "utf8");
    const jump = h.via ? byName[h.via] : undefined;
    const conn = parseConnection({
      host: h.address,
      port: h.port,
      user: h.user,
      privateKey: key,
      hostKey: h.hostKey,
      ...(jump ? { proxy: { host: jump.address, port: jump.port, user: jump.user, privateKey: key } } : {}),
    });
    const host = sharedPool().host(conn);
    const started = Date.now();
    const { stdout } = await host.exec([
      "sh",
      "-c",
      'echo "$(hostname): $(uname -sr), $(ip -o -4 addr show dev eth0 | awk "{print \\$4}")"',
    ]);
    console.log(
      `${stdout.trim().padEnd(48)} ${String(Date.now() - started).padStart(4)} ms  ${await host.fingerprint()}${jump ? `  (via ${jump.name})` : ""}`,
    );
  }
  const stats = sharedPool().stats();
  console.log(
    `\nSSH handshakes: ${Object.values(stats.handshakes).reduce((a, b) => a + b, 0)} for ${lab.hosts.length} hosts (one per host, plus the tunnel to hj through h1)`,
  );
  sharedPool().closeAll();
})().catch((err) => {
  console.error(err.message);
  process.exit(1);
});

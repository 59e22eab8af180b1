// Measures, on the lab, what a new SSH connection costs against a command on an already open one (the SSH
// layer's pool), directly and through the lab's latency relay. Reads the lab in $PNC_LAB_DIR (default the
// shared /tmp/pnc-lab: bring it up first). Usage: bash bench/launch sshCost [rounds]
import * as fs from "node:fs";
import { SshPool, parseConnection, type ConnectionSpec } from "../provider/ssh";
import { labHost, readLab } from "../test/lab/labHosts";

const rounds = Number(process.argv[2] ?? 20);

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function measure(label: string, conn: ConnectionSpec): Promise<void> {
  const fresh: number[] = [];
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
  const reused: number[] = [];
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

async function main(): Promise<void> {
  const lab = readLab();
  const h = labHost("h1", lab);
  const key = fs.readFileSync(h.privateKeyPath, "utf8");
  await measure("h1 direct", parseConnection({ host: h.address, port: h.port, privateKey: key }));
  if (h.relayPort) {
    await measure(
      `h1 via relay (+${lab.latencyMs} ms)`,
      parseConnection({ host: "127.0.0.1", port: h.relayPort, privateKey: key }),
    );
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

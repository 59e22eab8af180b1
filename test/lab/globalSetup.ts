// vitest globalSetup of the `lab` project: brings the local lab up when it is not, and takes it down again
// afterwards, unless PNC_LAB_KEEP=1 or the lab was already up before the run (then it is left alone).
import { labDir, labScript } from "./labHosts";

export const LAB_UP_ARGS = ["up", "3", "--nm", "h2", "--jump", "--nixos", "h3"];

export default function setup(): () => void {
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    throw new Error("the lab tests need root (network namespaces, mounts): run them as root");
  }
  const status = labScript(["status"]);
  if (status.code === 0) {
    process.stderr.write(`lab: using the lab that is already up in ${labDir()}\n`);
    return () => {};
  }
  if (status.code !== 3) {
    // Up but degraded: `up` completes what is missing (it is idempotent).
    process.stderr.write(`lab: lab in ${labDir()} is degraded, repairing:\n${status.stdout}`);
  }
  const broughtUp = status.code === 3;
  const up = labScript(LAB_UP_ARGS);
  if (up.code !== 0) {
    if (broughtUp) labScript(["down"]);
    throw new Error(`lab up failed (${up.code}):\n${up.stderr}`);
  }
  return () => {
    if (!broughtUp || process.env.PNC_LAB_KEEP === "1") return;
    const down = labScript(["down"]);
    if (down.code !== 0) throw new Error(`lab down failed (${down.code}):\n${down.stderr}`);
  };
}

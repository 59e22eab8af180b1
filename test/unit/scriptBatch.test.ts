// The batch wrapper's shell, run by a real local `sh`: each script's output, error output and exit code come
// back as if it had run alone, and no script can read (and so swallow) the rest of the batch.
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { batchMark, parseBatch } from "../../provider/host/protocol";
import { buildBatchScript } from "../../provider/runtime/scriptBatch";

function runBatch(scripts: string[]) {
  const mark = batchMark();
  const r = spawnSync("sh", ["-s"], { input: buildBatchScript(scripts, mark), encoding: "utf8" });
  return { status: r.status, items: parseBatch(r.stdout, scripts.length, mark) };
}

describe("buildBatchScript", () => {
  it("gives each script its own stdout, stderr and exit code", () => {
    const { status, items } = runBatch([
      "echo a; echo b >&2; exit 3",
      "printf 'x\\ny'",
      "true",
      "set -eu; false; echo never",
    ]);
    expect(status).toBe(0);
    expect(items).toEqual([
      { stdout: "a\n", stderr: "b\n", code: 3 },
      { stdout: "x\ny\n", stderr: "", code: 0 },
      { stdout: "", stderr: "", code: 0 },
      { stdout: "", stderr: "", code: 1 },
    ]);
  });

  it("keeps a script that reads stdin from eating the scripts after it", () => {
    const { items } = runBatch(["cat; echo done", "echo second"]);
    expect(items.map((i) => i.stdout)).toEqual(["done\n", "second\n"]);
  });

  it("passes hostile script text through as data, running only what it says", () => {
    const hostile = `printf '%s\\n' "it's \\$HOME \\\`x\\\` \\$(y)"; echo "PNC-ITEM-$PNC_MARK-END 0 0"; echo 'PNC-ITEM-END 9 0' >&2`;
    const { items } = runBatch([hostile, "echo after"]);
    // The batch's marker is not exported to the items: one cannot forge the line that ends it.
    expect(items[0]).toEqual({
      stdout: "it's $HOME `x` $(y)\nPNC-ITEM--END 0 0\n",
      stderr: "PNC-ITEM-END 9 0\n",
      code: 0,
    });
    expect(items[1].stdout).toBe("after\n");
  });

  it("reports an item that never ran as code -1", () => {
    expect(parseBatch("PNC-ITEM-m-OUT 0\nPNC-ITEM-m-ERR 0\nPNC-ITEM-m-END 0 0\n", 2, "m")[1]).toEqual({
      stdout: "",
      stderr: "",
      code: -1,
    });
  });
});

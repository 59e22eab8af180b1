// Our `ConnectionArgs` stays the shape of @pulumi/command's `remote.ConnectionArgs` (the assignments below fail
// `tsc --noEmit` when the two drift apart), and the published typings never reach for @pulumi/command.
import type { types } from "@pulumi/command";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { ConnectionArgs } from "../../provider";
import { parseConnection } from "../../provider/ssh/connection";

type CommandConnectionArgs = types.input.remote.ConnectionArgs;

const BIN = path.join(__dirname, "..", "..", "bin");

function declarationFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return declarationFiles(full);
    return entry.name.endsWith(".d.ts") ? [full] : [];
  });
}

describe("ConnectionArgs", () => {
  it("takes the object a @pulumi/command user already has, and gives one back", () => {
    const theirs: CommandConnectionArgs = {
      host: "198.18.0.11",
      port: 2222,
      user: "deploy",
      privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----",
      dialErrorLimit: 3,
      perDialTimeout: 5,
      proxy: { host: "198.18.0.1", user: "jump" },
    };
    const ours: ConnectionArgs = theirs;
    const back: CommandConnectionArgs = ours;
    expect(back).toBe(theirs);
    expect(parseConnection(ours)).toMatchObject({
      host: "198.18.0.11",
      port: 2222,
      user: "deploy",
      proxy: { host: "198.18.0.1", user: "jump", port: 22 },
    });
  });

  it("is published without a reference to @pulumi/command", () => {
    const files = declarationFiles(BIN);
    expect(files.length, "run `npm run build` first").toBeGreaterThan(10);
    const offenders = files.filter((f) =>
      /(from |import\()"@pulumi\/command"/.test(fs.readFileSync(f, "utf8")),
    );
    expect(offenders).toEqual([]);
  });
});

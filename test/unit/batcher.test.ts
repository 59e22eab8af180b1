// The Batcher that coalesces one host's concurrent operations into one script: who shares a batch, how
// outcomes and failures reach each caller, and that nothing is left behind per host.
import { describe, expect, it } from "vitest";
import { Batcher } from "../../provider/runtime/batcher";

interface Deferred<T> {
  readonly promise: Promise<T>;
  readonly resolve: (value: T) => void;
  readonly reject: (err: unknown) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve: (value: T) => void = () => undefined;
  let reject: (err: unknown) => void = () => undefined;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A run function that records each batch and finishes it only when the test says so. */
function controlledRun() {
  const batches: { key: string; items: number[]; done: Deferred<(string | Error)[]> }[] = [];
  const run = (key: string, items: number[]): Promise<(string | Error)[]> => {
    const done = deferred<(string | Error)[]>();
    batches.push({ key, items, done });
    return done.promise;
  };
  return { batches, run };
}

/** Resolves once `predicate` holds (the batcher's window and hand-offs are real timers). */
async function until(predicate: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !predicate(); i++) await new Promise((r) => setTimeout(r, 2));
  expect(predicate()).toBe(true);
}

/** The batcher's per-key lanes: their count shows whether finished keys were cleaned up. */
function laneCount(batcher: Batcher<string, number, string>): number {
  const lanes: unknown = Reflect.get(batcher, "lanes");
  expect(lanes).toBeInstanceOf(Map);
  return (lanes as Map<unknown, unknown>).size;
}

const echo = async (_key: string, items: number[]) => items.map((i) => `done ${i}`);

describe("Batcher", () => {
  it("runs items submitted in the same tick as one batch", async () => {
    const seen: number[][] = [];
    const batcher = new Batcher<string, number, string>(async (key, items) => {
      seen.push(items);
      return echo(key, items);
    });
    const results = await Promise.all([1, 2, 3].map((i) => batcher.submit("h1", i)));
    expect(results).toEqual(["done 1", "done 2", "done 3"]);
    expect(seen).toEqual([[1, 2, 3]]);
  });

  it("lets an item submitted within the window join the first batch", async () => {
    const seen: number[][] = [];
    const batcher = new Batcher<string, number, string>(async (key, items) => {
      seen.push(items);
      return echo(key, items);
    }, 50);
    const first = batcher.submit("h1", 1);
    await new Promise((r) => setTimeout(r, 5));
    await Promise.all([first, batcher.submit("h1", 2)]);
    expect(seen).toEqual([[1, 2]]);
  });

  it("coalesces items submitted while a batch runs into the next batch", async () => {
    const { batches, run } = controlledRun();
    const batcher = new Batcher<string, number, string>(run, 1);
    const first = batcher.submit("h1", 1);
    await until(() => batches.length === 1);
    const later = [2, 3, 4].map((i) => batcher.submit("h1", i));
    // Nothing new starts while the first batch is in flight, however long it takes.
    await new Promise((r) => setTimeout(r, 20));
    expect(batches).toHaveLength(1);

    batches[0].done.resolve(["one"]);
    expect(await first).toBe("one");
    await until(() => batches.length === 2);
    expect(batches[1].items).toEqual([2, 3, 4]);
    batches[1].done.resolve(["two", "three", "four"]);
    expect(await Promise.all(later)).toEqual(["two", "three", "four"]);
    expect(batches).toHaveLength(2);
  });

  it("with depth 2, gathers and sends the next batch while one runs, and no third", async () => {
    const { batches, run } = controlledRun();
    const batcher = new Batcher<string, number, string>(run, 1, 32, 2);
    const first = batcher.submit("h1", 1);
    await until(() => batches.length === 1);
    const second = [2, 3].map((i) => batcher.submit("h1", i));
    await until(() => batches.length === 2);
    expect(batches[1].items).toEqual([2, 3]);
    const third = batcher.submit("h1", 4);
    await new Promise((r) => setTimeout(r, 20));
    expect(batches).toHaveLength(2);
    batches[1].done.resolve(["two", "three"]);
    expect(await Promise.all(second)).toEqual(["two", "three"]);
    await until(() => batches.length === 3);
    expect(batches[2].items).toEqual([4]);
    batches[0].done.resolve(["one"]);
    batches[2].done.resolve(["four"]);
    expect([await first, await third]).toEqual(["one", "four"]);
    expect(laneCount(batcher)).toBe(0);
  });

  it("rejects only the item whose outcome is an Error", async () => {
    const batcher = new Batcher<string, number, string>(async (_key, items) =>
      items.map((i) => (i === 2 ? new Error(`item ${i} failed`) : `ok ${i}`)),
    );
    const results = await Promise.allSettled([1, 2, 3].map((i) => batcher.submit("h1", i)));
    expect(results).toEqual([
      { status: "fulfilled", value: "ok 1" },
      { status: "rejected", reason: new Error("item 2 failed") },
      { status: "fulfilled", value: "ok 3" },
    ]);
  });

  it("rejects every item of a batch whose run throws, and runs the next batch normally", async () => {
    const { batches, run } = controlledRun();
    const batcher = new Batcher<string, number, string>(run, 1);
    const doomed = [1, 2].map((i) => batcher.submit("h1", i));
    await until(() => batches.length === 1);
    const next = batcher.submit("h1", 3);
    const lost = new Error("connection lost");
    batches[0].done.reject(lost);
    const settled = await Promise.allSettled(doomed);
    expect(settled).toEqual([
      { status: "rejected", reason: lost },
      { status: "rejected", reason: lost },
    ]);
    await until(() => batches.length === 2);
    batches[1].done.resolve(["fine"]);
    expect(await next).toBe("fine");
  });

  it("runs different keys independently and concurrently", async () => {
    const { batches, run } = controlledRun();
    const batcher = new Batcher<string, number, string>(run, 1);
    const a = batcher.submit("h1", 1);
    const b = batcher.submit("h2", 2);
    await until(() => batches.length === 2);
    expect(batches.map((x) => [x.key, x.items])).toEqual([
      ["h1", [1]],
      ["h2", [2]],
    ]);
    // h2 finishes while h1 is still running.
    batches[1].done.resolve(["h2 done"]);
    expect(await b).toBe("h2 done");
    batches[0].done.resolve(["h1 done"]);
    expect(await a).toBe("h1 done");
  });

  it("never puts more than maxBatch items in one batch, keeping submission order", async () => {
    const seen: number[][] = [];
    const batcher = new Batcher<string, number, string>(
      async (key, items) => {
        seen.push(items);
        return echo(key, items);
      },
      1,
      2,
    );
    const results = await Promise.all([1, 2, 3, 4, 5].map((i) => batcher.submit("h1", i)));
    expect(results).toEqual(["done 1", "done 2", "done 3", "done 4", "done 5"]);
    expect(seen).toEqual([[1, 2], [3, 4], [5]]);
  });

  it("removes a key's lane once its last batch is done, also after a failure", async () => {
    const batcher = new Batcher<string, number, string>(async (_key, items) => {
      if (items.includes(0)) throw new Error("boom");
      return items.map(String);
    }, 1);
    await Promise.all([batcher.submit("h1", 1), batcher.submit("h2", 2)]);
    expect(laneCount(batcher)).toBe(0);
    await expect(batcher.submit("h1", 0)).rejects.toThrow("boom");
    expect(laneCount(batcher)).toBe(0);
    // A later submit on a cleaned-up key starts afresh.
    expect(await batcher.submit("h1", 7)).toBe("7");
    expect(laneCount(batcher)).toBe(0);
  });

  // Regression: a window timer left from a hand-off must not cut a later lane's window short.
  it("gives a new lane its full window even after an earlier hand-off", async () => {
    const seen: number[][] = [];
    const gate = deferred<void>();
    const batcher = new Batcher<string, number, string>(async (_key, items) => {
      seen.push(items);
      if (items[0] === 1) await gate.promise;
      if (items[0] === 2) await new Promise((r) => setTimeout(r, 150));
      return items.map(String);
    }, 300);
    const first = batcher.submit("h1", 1);
    await until(() => seen.length === 1);
    const queued = batcher.submit("h1", 2);
    // Submitted the moment item 1 resolves: arms a 300 ms timer that the hand-off never clears.
    const eager = first.then(() => batcher.submit("h1", 3));
    gate.resolve();
    await Promise.all([queued, eager]);
    // The stale timer fires ~150 ms into item 4's 300 ms window; item 5 comes 225 ms into it.
    const a = batcher.submit("h1", 4);
    await new Promise((r) => setTimeout(r, 225));
    const b = batcher.submit("h1", 5);
    await Promise.all([a, b]);
    expect(seen).toEqual([[1], [2, 3], [4, 5]]);
  });
});

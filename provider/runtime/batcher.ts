// Coalesces operations for one host that arrive while another is in flight (the engine runs up to
// --parallel creates at once) into one script: one round trip, one lock, one scan of the host's addresses.
// With a depth of 2, the next batch is gathered while one runs and sent so that it reaches the host as that
// one ends: latency is hidden (it waits on the host, for its lock, instead of on the wire), yet the batch is
// not split early into small ones that each pay the fixed cost of a batch.

interface Pending<I, O> {
  readonly item: I;
  readonly resolve: (value: O) => void;
  readonly reject: (err: unknown) => void;
}

interface Lane<I, O> {
  queue: Pending<I, O>[];
  /** When each batch of this key running now started (ms, performance.now()), oldest first. */
  running: number[];
  timer?: NodeJS.Timeout;
}

/** How a Batcher schedules the batches of one key. */
export interface BatchPolicy<K> {
  /** How long the first item of an idle key waits for others (the engine starts operations together). */
  readonly windowMs: number;
  readonly maxBatch: number;
  /** How many batches of the key may run at once (asked at each flush). */
  depth(key: K): number;
  /**
   * With a batch running: how long before it is expected to end (the last batch's duration) the next one is
   * sent, in ms (the time it takes to reach the host). Without it, or before a batch has ended, after windowMs.
   */
  leadMs?(key: K): number;
}

/**
 * `run` gets a batch of items for one key and returns one outcome per item, in order (an Error rejects that
 * item alone); if `run` throws, every item of the batch is rejected with that error. At most `depth` batches of
 * one key run at once: items that arrive while `depth` are running wait for the next batch.
 */
export class Batcher<K, I, O> {
  private readonly lanes = new Map<K, Lane<I, O>>();
  /** How long the last batch of each key took (kept when its lane goes: one entry per host). */
  private readonly lastMs = new Map<K, number>();
  private readonly policy: BatchPolicy<K>;

  constructor(
    private readonly run: (key: K, items: I[]) => Promise<(O | Error)[]>,
    policy: Partial<BatchPolicy<K>> = {},
  ) {
    this.policy = { windowMs: 10, maxBatch: 32, depth: () => 1, ...policy };
  }

  submit(key: K, item: I): Promise<O> {
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { queue: [], running: [] };
      this.lanes.set(key, lane);
    }
    const promise = new Promise<O>((resolve, reject) => lane.queue.push({ item, resolve, reject }));
    if (lane.running.length < this.policy.depth(key) && !lane.timer) this.schedule(key, lane);
    return promise;
  }

  /** Arms the lane's timer for its next batch: a short window when idle, just in time while one runs. */
  private schedule(key: K, lane: Lane<I, O>): void {
    let delay = this.policy.windowMs;
    const lead = this.policy.leadMs?.(key);
    const last = this.lastMs.get(key);
    if (lane.running.length > 0 && last !== undefined && lead !== undefined) {
      delay = Math.max(delay, lane.running[0] + last - lead - performance.now());
    }
    lane.timer = setTimeout(() => this.flush(key), delay);
  }

  private async flush(key: K): Promise<void> {
    const lane = this.lanes.get(key);
    if (!lane) return;
    // Started by the hand-off after a batch, a timer may still be pending: it must not fire later.
    if (lane.timer) clearTimeout(lane.timer);
    lane.timer = undefined;
    const depth = this.policy.depth(key);
    if (lane.running.length >= depth || lane.queue.length === 0) return;
    const batch = lane.queue.splice(0, this.policy.maxBatch);
    const started = performance.now();
    lane.running.push(started);
    // More than one batch's worth waiting, and room for another: it goes on its own schedule.
    if (lane.queue.length > 0 && lane.running.length < depth) this.schedule(key, lane);
    try {
      const outcomes = await this.run(
        key,
        batch.map((p) => p.item),
      );
      batch.forEach((p, i) => {
        const outcome = outcomes[i];
        if (outcome instanceof Error) p.reject(outcome);
        else p.resolve(outcome);
      });
    } catch (err) {
      for (const p of batch) p.reject(err);
    } finally {
      lane.running.splice(lane.running.indexOf(started), 1);
      this.lastMs.set(key, performance.now() - started);
      if (lane.queue.length > 0) setImmediate(() => this.flush(key));
      else if (lane.running.length === 0 && !lane.timer) this.lanes.delete(key);
    }
  }
}

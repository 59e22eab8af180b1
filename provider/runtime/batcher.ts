// Coalesces operations for one host that arrive while another is in flight (the engine runs up to
// --parallel creates at once) into one script: one round trip, one lock, one scan of the host's addresses.
// With a depth of 2, the next batch is gathered and sent while one runs, so latency is hidden: it waits on
// the host (for its lock) instead of on the wire.

interface Pending<I, O> {
  readonly item: I;
  readonly resolve: (value: O) => void;
  readonly reject: (err: unknown) => void;
}

interface Lane<I, O> {
  queue: Pending<I, O>[];
  /** Batches of this key running now. */
  inFlight: number;
  timer?: NodeJS.Timeout;
}

/**
 * `run` gets a batch of items for one key and returns one outcome per item, in order (an Error rejects that
 * item alone); if `run` throws, every item of the batch is rejected with that error. At most `depth` batches of
 * one key run at once: items that arrive while `depth` are running wait for the next batch.
 */
export class Batcher<K, I, O> {
  private readonly lanes = new Map<K, Lane<I, O>>();

  constructor(
    private readonly run: (key: K, items: I[]) => Promise<(O | Error)[]>,
    private readonly windowMs = 10,
    private readonly maxBatch = 32,
    private readonly depth = 1,
  ) {}

  submit(key: K, item: I): Promise<O> {
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { queue: [], inFlight: 0 };
      this.lanes.set(key, lane);
    }
    const promise = new Promise<O>((resolve, reject) => lane.queue.push({ item, resolve, reject }));
    // A short window lets the operations the engine starts together share the first batch too.
    if (lane.inFlight < this.depth && !lane.timer) {
      lane.timer = setTimeout(() => this.flush(key), this.windowMs);
    }
    return promise;
  }

  private async flush(key: K): Promise<void> {
    const lane = this.lanes.get(key);
    if (!lane) return;
    // Started by the hand-off after a batch, a window timer may still be pending: it must not fire later.
    if (lane.timer) clearTimeout(lane.timer);
    lane.timer = undefined;
    if (lane.inFlight >= this.depth || lane.queue.length === 0) return;
    const batch = lane.queue.splice(0, this.maxBatch);
    lane.inFlight++;
    // More than one batch's worth waiting, and room for another: it starts after its own window.
    if (lane.queue.length > 0 && lane.inFlight < this.depth) {
      lane.timer = setTimeout(() => this.flush(key), this.windowMs);
    }
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
      lane.inFlight--;
      if (lane.queue.length > 0) setImmediate(() => this.flush(key));
      else if (lane.inFlight === 0 && !lane.timer) this.lanes.delete(key);
    }
  }
}

// Counter increments on the hot paths, folded into prom-client only when someone reads.
// A bound prom-client child still hashes and checks its labels on every `inc` (about 5%
// of an HTTP publish's CPU, several increments per request); a tally is one addition,
// and `fold()` before every read (the scrape, the console's totals) makes the counters exact.

/** What a tally adds into: a bound prom-client counter child. */
export interface CounterChild {
  inc(value?: number): void;
}

export class Tally {
  private pending = 0;

  constructor(private readonly child: CounterChild) {}

  /** Counters only go up: a negative or non-finite amount is ignored (prom-client would throw at the scrape). */
  inc(value = 1): void {
    if (value > 0 && value !== Infinity) this.pending += value;
  }

  fold(): void {
    if (this.pending === 0) return;
    this.child.inc(this.pending);
    this.pending = 0;
  }
}

/** What a gauge tally moves: a bound prom-client gauge child. */
export interface GaugeChild {
  inc(value?: number): void;
  dec(value?: number): void;
}

/** A gauge moved up and down on the hot path (a connection opens, closes): the net change is folded. */
export class GaugeTally {
  private pending = 0;
  private moved = false;

  constructor(private readonly child: GaugeChild) {}

  inc(value = 1): void {
    if (!Number.isFinite(value)) return;
    this.pending += value;
    this.moved = true;
  }

  dec(value = 1): void {
    if (!Number.isFinite(value)) return;
    this.pending -= value;
    this.moved = true;
  }

  fold(): void {
    if (!this.moved) return;
    // Moved to and fro (a connect, then its close): the series still shows, at its value.
    if (this.pending >= 0) this.child.inc(this.pending);
    else this.child.dec(-this.pending);
    this.pending = 0;
    this.moved = false;
  }
}

/** Every tally made, folded together before a read. */
export class Tallies {
  private readonly all: Array<Tally | GaugeTally> = [];

  of(child: CounterChild): Tally {
    const t = new Tally(child);
    this.all.push(t);
    return t;
  }

  ofGauge(child: GaugeChild): GaugeTally {
    const t = new GaugeTally(child);
    this.all.push(t);
    return t;
  }

  fold(): void {
    for (const t of this.all) t.fold();
  }
}

// Markers that pair a held removal (channel_vacated, member_removed) with an
// addition that cancels it (channel_occupied, member_added) within the delay.
// With a broker the marker lives there, so the addition may happen on any node.

export interface Markers {
  /** Leaves a marker for `ttlMs` (replacing a leftover one). */
  set(key: string, ttlMs: number): Promise<void>;
  /** Removes the marker; true only for the one caller that found it. */
  take(key: string): Promise<boolean>;
}

export class LocalMarkers implements Markers {
  private readonly expiries = new Map<string, number>();

  async set(key: string, ttlMs: number): Promise<void> {
    this.expiries.set(key, Date.now() + ttlMs);
  }

  async take(key: string): Promise<boolean> {
    const expiry = this.expiries.get(key);
    if (expiry === undefined) return false;
    this.expiries.delete(key);
    return expiry > Date.now();
  }
}

/** What a broker offers for markers (the horizontal adapter). */
export interface MarkerBroker {
  claim(key: string, ttlMs: number): Promise<boolean>;
  takeClaim(key: string): Promise<boolean>;
}

export class BrokerMarkers implements Markers {
  constructor(private readonly broker: MarkerBroker) {}

  async set(key: string, ttlMs: number): Promise<void> {
    if (await this.broker.claim(`mark:${key}`, ttlMs)) return;
    // A leftover from a node that died while holding: replace it.
    await this.broker.takeClaim(`mark:${key}`);
    await this.broker.claim(`mark:${key}`, ttlMs);
  }

  take(key: string): Promise<boolean> {
    return this.broker.takeClaim(`mark:${key}`);
  }
}

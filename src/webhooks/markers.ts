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

/** Markers in the broker, through the horizontal adapter (any node can take them). */
export interface MarkerBroker {
  setMarker(key: string, ttlMs: number): Promise<void>;
  takeMarker(key: string): Promise<boolean>;
}

export class BrokerMarkers implements Markers {
  constructor(private readonly broker: MarkerBroker) {}

  set(key: string, ttlMs: number): Promise<void> {
    return this.broker.setMarker(key, ttlMs);
  }

  take(key: string): Promise<boolean> {
    return this.broker.takeMarker(key);
  }
}

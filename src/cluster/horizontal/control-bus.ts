// The cluster's control topics: one shared by every node, one per node for
// answers and snapshots. Messages are encoded with the envelope's version and
// decoded once here, where they enter; what fails to decode is dropped, counted
// by type and reason, and logged once per peer.
import type { Logger } from 'pino';
import type { Transport } from '../../transports/transport.js';
import { decodeControl, encodeControl, type Message, type Outgoing } from './wire.js';

export interface WireObserver {
  /** a control message that was dropped: its type (or "unknown") and why */
  invalid(type: string, reason: string): void;
}

/** Peers whose bad messages were logged (bounded: a flood of forged ids cannot grow it). */
const LOGGED_PEERS_MAX = 1000;

export class ControlBus {
  readonly clusterTopic: string;
  readonly ownTopic: string;
  private readonly logged = new Set<string>();

  constructor(
    private readonly transport: Transport,
    private readonly prefix: string,
    private readonly nodeId: string,
    private readonly observer: WireObserver,
    private readonly log: Logger,
  ) {
    this.clusterTopic = transport.topic(prefix, 'cluster');
    this.ownTopic = this.topicOf(nodeId);
  }

  topicOf(nodeId: string): string {
    return this.transport.topic(this.prefix, 'node', nodeId);
  }

  isControlTopic(topic: string): boolean {
    return topic === this.clusterTopic || topic === this.ownTopic;
  }

  subscribe(): Promise<void> {
    return this.transport.subscribe([this.clusterTopic, this.ownTopic]);
  }

  /** To every node, or to one node's own topic. */
  send(message: Outgoing, to?: string): void {
    this.transport.publish(to === undefined ? this.clusterTopic : this.topicOf(to), encodeControl(this.nodeId, message));
  }

  /** Decodes a payload from a control topic (our own echoes included); null for what was dropped. */
  decode(payload: string): Message | null {
    const decoded = decodeControl(payload);
    if (!decoded.ok) {
      this.observer.invalid(decoded.type, decoded.reason);
      // Unknown types are what a newer node may send: counted, not logged as a fault.
      if (decoded.reason !== 'unknown_type') this.logOnce(decoded.from ?? '(no sender)', decoded.type, decoded.reason);
      return null;
    }
    return decoded.message;
  }

  private logOnce(from: string, type: string, reason: string): void {
    if (this.logged.has(from)) return;
    if (this.logged.size >= LOGGED_PEERS_MAX) return;
    this.logged.add(from);
    this.log.warn({ peer: from, type, reason }, 'dropped a control message that does not decode (logged once per peer)');
  }
}

// What a peer's control message does on this node: each kind handed to the part that
// owns it. Messages arrive here decoded and validated (control-bus.ts); only the hello
// family is taken from a node not yet known, everything else needs its heartbeat first.
import type { ClusterNode } from '../ports.js';
import type { ControlBus } from './control-bus.js';
import type { Membership } from './membership.js';
import type { HorizontalOperator } from './operator.js';
import type { HorizontalQueries } from './queries.js';
import type { Replica } from './replica.js';
import type { RequestTracker } from './requests.js';
import type { StateSync } from './state-sync.js';
import type { Message } from './wire.js';

export interface ControlParts {
  selfId: string;
  control: ControlBus;
  membership: Membership;
  sync: StateSync;
  replica: Replica;
  requests: RequestTracker;
  operator: HorizontalOperator;
  queries: HorizontalQueries;
  /** the node above, once the cluster started */
  node(): ClusterNode | null;
}

/** Applies a control message from another node. */
export function onPeerControl(m: Message, p: ControlParts): void {
  switch (m.t) {
    case 'bye':
      p.membership.left(m.n);
      return;
    case 'hb':
      return p.sync.onHeartbeat(m);
    case 'hello':
      p.membership.seen(m.n, m.p, undefined);
      p.sync.sendSnapshot(m.n);
      // A heartbeat at once: the newcomer learns who is here within a round trip, not an interval.
      p.sync.sendHeartbeat();
      return;
    case 'dead':
      if (m.id !== p.selfId) p.membership.declareDead(m.id);
      return;
    case 'snap':
      return p.sync.onSnapshot(m);
    case 'res':
      p.requests.answer(m.id, m.n, m.val);
      return;
    case 'snapreq':
      // Our own state, to the asker's topic: answered even before we know the asker again.
      p.sync.sendSnapshot(m.n);
      return;
    case 'f':
      return; // the sender's own fence, passing by
  }
  // Anything else only from a peer we know (its heartbeat comes first).
  if (!p.membership.touch(m.n)) return;
  switch (m.t) {
    case 'd':
      p.replica.applyDelta(m);
      return;
    case 'disc':
      p.node()?.disconnectUser(m.a, m.u, m.code, m.msg);
      return;
    case 'req':
      if (m.k === 'node' || m.k === 'apps') p.operator.answer(m.k, m.id, m.n, p.node());
      else p.control.send({ t: 'res', id: m.id, val: p.queries.answer(m.k, m.a, m.c) }, m.n);
      return;
    case 'cw':
      p.operator.watched(m.a, m.n);
      return;
    case 'cev':
      p.node()?.consoleEvents(m.a, { events: m.ev, skipped: m.sk });
      return;
    case 'wh':
      p.node()?.webhooksRelayed(m.a, m.ev);
      return;
  }
}

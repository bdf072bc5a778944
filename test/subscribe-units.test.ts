// The core's subscribe on a real local cluster, in process: synchronous when nothing
// waits (no promise per connect on one node), a promise when something does (a cache
// read, a pending cluster watch), and a failure now or later that leaves nothing behind.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { LocalCluster } from '../src/cluster/local/local-cluster.js';
import type { Cluster } from '../src/cluster/ports.js';
import { appSchema } from '../src/config/schema.js';
import { Connection } from '../src/conn/connection.js';
import { LocalRegistry } from '../src/conn/registry.js';
import { ConsoleTap } from '../src/core/console-tap.js';
import { Core } from '../src/core/core.js';
import type { AppStore } from '../src/apps/store.js';
import { Metrics } from '../src/metrics/metrics.js';

const app = appSchema.parse({ id: 'sub-units', key: 'sub-units-key', secret: 's' });
const metrics = new Metrics('su_');
let ids = 0;

class TestConnection extends Connection {
  readonly transport = 'ws' as const;
  readonly frames: Array<{ event: string; channel?: string }> = [];
  readonly topics = new Set<string>();
  constructor() {
    super(`1.${++ids}`, app, false, metrics.app(app.id), 10);
  }
  protected write(frame: string): void {
    this.frames.push(JSON.parse(frame) as { event: string; channel?: string });
  }
  close(): void {
    this.closed = true;
  }
  subscribeTopic(topic: string): void {
    this.topics.add(topic);
  }
  unsubscribeTopic(topic: string): void {
    this.topics.delete(topic);
  }
  publishToOthers(): void {}
  bufferedAmount(): number {
    return 0;
  }
}

/** A core on a local cluster whose channel bus and presence directory the test may replace. */
function coreWith(channels?: Partial<Cluster['channels']>, presence?: Partial<Cluster['presence']>) {
  const local = new LocalCluster({ removalDelayMs: 0 });
  const cluster =
    channels || presence
      ? (Object.assign(Object.create(local), {
          channels: { ...local.channels, ...channels },
          presence: { ...local.presence, ...presence },
        }) as Cluster)
      : local;
  const registry = new LocalRegistry();
  const core = new Core(
    { maxConnections: null },
    {
      topics: { publish: () => undefined, subscribers: () => 0 },
      registry,
      cluster,
      apps: {} as AppStore,
      metrics,
      events: { emit: () => undefined },
      log: pino({ level: 'silent' }),
      tap: new ConsoleTap(local.nodeId, local.operator, { maxEventsPerSecond: 10 }),
      report: async () => null,
    },
  );
  return { core, registry };
}

const succeeded = (conn: TestConnection, channel: string) =>
  conn.frames.filter((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === channel).length;

describe('core subscribe', () => {
  it('answers at once on one node: no promise, the connection told and fanned out', () => {
    const { core, registry } = coreWith();
    const conn = new TestConnection();
    const joined = core.subscribe(conn, 'plain', null);
    assert.equal(joined, true, 'a plain channel on the local cluster joins synchronously');
    assert.equal(succeeded(conn, 'plain'), 1);
    assert.equal(conn.topics.size, 1);
    assert.equal(registry.subscriberCount(app.id, 'plain'), 1);
    // A second subscriber of the same channel: synchronous too.
    const other = new TestConnection();
    assert.equal(core.subscribe(other, 'plain', null), true);
    assert.equal(registry.subscriberCount(app.id, 'plain'), 2);
  });

  it('waits for a cache channel (a miss is read) and for a pending cluster watch', async () => {
    const { core } = coreWith();
    const conn = new TestConnection();
    const joining = core.subscribe(conn, 'cache-x', null);
    assert.ok(joining instanceof Promise, 'the cache read is waited for');
    assert.equal(await joining, true);
    assert.deepEqual(
      conn.frames.map((f) => f.event),
      ['pusher_internal:subscription_succeeded', 'pusher:cache_miss'],
    );

    let confirm!: () => void;
    const pending = new Promise<void>((resolve) => (confirm = resolve));
    const slow = coreWith({ watch: () => pending, ready: () => pending });
    const first = new TestConnection();
    const second = new TestConnection();
    const a = slow.core.subscribe(first, 'slow', null);
    const b = slow.core.subscribe(second, 'slow', null);
    assert.ok(a instanceof Promise && b instanceof Promise);
    assert.equal(succeeded(first, 'slow') + succeeded(second, 'slow'), 0, 'nobody is told before the watch holds');
    confirm();
    assert.deepEqual(await Promise.all([a, b]), [true, true]);
    assert.equal(succeeded(first, 'slow') + succeeded(second, 'slow'), 2);
  });

  it('a presence member is told it joined once its join is routed to the peers; one node waits for nothing', async () => {
    const solo = coreWith().core.subscribe(new TestConnection(), 'presence-solo', { userId: 'u0', info: null });
    assert.equal(solo, true, 'a presence channel on one node joins synchronously');

    let asked = 0;
    let confirm!: () => void;
    const pending = new Promise<void>((resolve) => (confirm = resolve));
    const { core, registry } = coreWith(undefined, { routed: () => (asked++, pending) });
    const member = new TestConnection();
    const joining = core.subscribe(member, 'presence-room', { userId: 'u1', info: { n: 1 } });
    assert.ok(joining instanceof Promise, 'the join waits for its routing');
    await new Promise((r) => setImmediate(r));
    assert.equal(succeeded(member, 'presence-room'), 0, 'not told before its join is routed');
    assert.equal(registry.subscriberCount(app.id, 'presence-room'), 1, 'counted meanwhile, as any join in flight');
    confirm();
    assert.equal(await joining, true);
    assert.equal(succeeded(member, 'presence-room'), 1);
    assert.equal(core.subscribe(new TestConnection(), 'plain-room', null), true, 'a channel without members asks nothing');
    assert.equal(asked, 1);
  });

  it('a connection that leaves during the wait is not told, and holds nothing', async () => {
    let confirm!: () => void;
    const pending = new Promise<void>((resolve) => (confirm = resolve));
    const { core, registry } = coreWith({ watch: () => pending });
    const conn = new TestConnection();
    const joining = core.subscribe(conn, 'left', null);
    core.unsubscribe(conn, 'left');
    confirm();
    assert.equal(await joining, false);
    assert.equal(succeeded(conn, 'left'), 0);
    assert.equal(registry.subscriberCount(app.id, 'left'), 0);
  });

  it('a watch that throws now or rejects later fails the subscribe and undoes the join', async () => {
    const throwing = coreWith({
      watch: () => {
        throw new Error('broken now');
      },
    });
    const now = new TestConnection();
    assert.throws(() => throwing.core.subscribe(now, 'fails-now', null), /broken now/);
    assert.equal(now.channels.has('fails-now'), false);
    assert.equal(throwing.registry.subscriberCount(app.id, 'fails-now'), 0);

    const rejecting = coreWith({ watch: () => Promise.reject(new Error('broken later')) });
    const later = new TestConnection();
    const joining = rejecting.core.subscribe(later, 'fails-later', null);
    assert.ok(joining instanceof Promise);
    await assert.rejects(joining, /broken later/);
    assert.equal(later.channels.has('fails-later'), false);
    assert.equal(rejecting.registry.subscriberCount(app.id, 'fails-later'), 0);
    assert.equal(succeeded(later, 'fails-later'), 0);
    // The channel works again once the cluster does: the failed join left no count behind.
    const again = new TestConnection();
    assert.equal(coreWith().core.subscribe(again, 'fails-later', null), true);
  });
});

// Highly available brokers from Debian's packages on loopback: a Redis master, its replica and
// three sentinels (`redis-server conf --sentinel`, what redis-sentinel runs), and a NATS
// cluster of three servers with routes and clustered JetStream. Every process is tracked and
// killed by its pid, never by name.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, startRedis, stopProcess, tracked, waitForPort, type Broker } from './brokers.js';
import { until } from './wait.js';

/** One question to a Redis (or sentinel) on a loopback port, on a connection of its own; null when it does not answer. */
async function askRedis<T>(port: number, ask: (r: Redis) => Promise<T>): Promise<T | null> {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await r.connect();
    return await ask(r);
  } catch {
    return null;
  } finally {
    r.disconnect();
  }
}

export interface Sentinel {
  port: number;
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** One sentinel on a free loopback port watching `name` at `masterPort` (it need not be up); `extra` config lines. */
export async function startSentinel(name: string, masterPort: number, quorum = 1, extra: string[] = []): Promise<Sentinel> {
  const dir = mkdtempSync(join(tmpdir(), 'chorus-sentinel-'));
  const port = await freePort();
  const conf = join(dir, 'sentinel.conf');
  // Sentinel rewrites its config file: each one has its own.
  writeFileSync(
    conf,
    [`port ${port}`, 'bind 127.0.0.1', `dir ${dir}`, `sentinel monitor ${name} 127.0.0.1 ${masterPort} ${quorum}`, ...extra, ''].join('\n'),
  );
  const proc = tracked(spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' }));
  await waitForPort(port);
  return { port, proc, stop: () => stopProcess(proc, 'SIGKILL') };
}

export interface SentinelSet {
  master: Broker;
  replica: Broker;
  sentinelPorts: number[];
  name: string;
  /** the master's port as the sentinels see it now */
  currentMasterPort(): Promise<number | null>;
  stop(): Promise<void>;
}

/** One master, one replica, three sentinels (quorum 2, down-after 1 s). */
export async function startSentinelSet(name = 'chorus-master'): Promise<SentinelSet> {
  const master = await startRedis();
  const replica = await startRedis(['--replicaof', '127.0.0.1', String(master.port)]);
  await until(
    async () => (await askRedis(replica.port, (r) => r.info('replication')))?.includes('master_link_status:up') === true,
    10_000,
    'replica in sync',
  );
  const sentinelPorts: number[] = [];
  const sentinels: ChildProcess[] = [];
  for (let i = 0; i < 3; i++) {
    const sentinel = await startSentinel(name, master.port, 2, [
      `sentinel down-after-milliseconds ${name} 1000`,
      `sentinel failover-timeout ${name} 5000`,
      `sentinel parallel-syncs ${name} 1`,
    ]);
    sentinels.push(sentinel.proc);
    sentinelPorts.push(sentinel.port);
  }
  const currentMasterPort = async (): Promise<number | null> => {
    const addr = await askRedis(
      sentinelPorts[0],
      (r) => r.call('SENTINEL', 'get-master-addr-by-name', name) as Promise<[string, string] | null>,
    );
    return addr ? Number(addr[1]) : null;
  };
  // Every sentinel knows the replica and its peers before a test kills anything.
  await until(
    async () => /slaves=1,sentinels=3/.test((await askRedis(sentinelPorts[0], (r) => r.info('sentinel'))) ?? ''),
    15_000,
    'sentinels see the replica and each other',
    100,
  );
  return {
    master,
    replica,
    sentinelPorts,
    name,
    currentMasterPort,
    stop: async () => {
      await Promise.all(sentinels.map((p) => stopProcess(p, 'SIGKILL')));
      await Promise.all([master.stop('SIGKILL'), replica.stop('SIGKILL')]);
    },
  };
}

export interface NatsServer {
  name: string;
  port: number;
  monitorPort: number;
  proc: ChildProcess;
  url: string;
  /** client connections on this server now (from its monitoring endpoint), null when it does not answer */
  clients(): Promise<number | null>;
}

export interface NatsCluster {
  servers: NatsServer[];
  urls: string[];
  kill(server: NatsServer, signal: NodeJS.Signals): void;
  stop(): Promise<void>;
}

async function monitor<T>(server: { monitorPort: number }, path: string): Promise<T | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${server.monitorPort}${path}`, { signal: AbortSignal.timeout(1000) });
    return res.ok ? ((await res.json()) as T) : null;
  } catch {
    return null;
  }
}

/** Three nats-servers with routes between them, JetStream clustered (R3 possible) unless `jetstream` is false. */
export async function startNatsCluster(options: { jetstream?: boolean } = {}): Promise<NatsCluster> {
  const jetstream = options.jetstream !== false;
  const ports = await Promise.all(
    [0, 1, 2].map(async () => ({ client: await freePort(), route: await freePort(), monitor: await freePort() })),
  );
  const routes = ports.map((p) => `nats://127.0.0.1:${p.route}`).join(',');
  const servers: NatsServer[] = ports.map((p, i) => {
    const dir = mkdtempSync(join(tmpdir(), `chorus-nats-${i}-`));
    const name = `n${i}`;
    const args = [
      '-a',
      '127.0.0.1',
      '-p',
      String(p.client),
      '-m',
      String(p.monitor),
      '-n',
      name,
      ...(jetstream ? ['-js', '-sd', dir] : []),
    ];
    args.push('--cluster_name', 'chorus', '--cluster', `nats://127.0.0.1:${p.route}`, '--routes', routes);
    const proc = tracked(spawn('nats-server', args, { stdio: 'ignore' }));
    const server: NatsServer = {
      name,
      port: p.client,
      monitorPort: p.monitor,
      proc,
      url: `nats://127.0.0.1:${p.client}`,
      clients: async () => (await monitor<{ num_connections: number }>(server, '/connz'))?.num_connections ?? null,
    };
    return server;
  });
  await Promise.all(servers.map((s) => waitForPort(s.port)));
  // JetStream answers only once the servers elected a meta leader; routes are up before that.
  await until(
    async () => {
      if (!jetstream) {
        const routes = await Promise.all(servers.map((s) => monitor<{ num_routes: number }>(s, '/routez')));
        return routes.every((r) => (r?.num_routes ?? 0) >= 2);
      }
      const all = await Promise.all(servers.map((s) => monitor<{ meta_cluster?: { leader?: string } }>(s, '/jsz')));
      return all.every((j) => Boolean(j?.meta_cluster?.leader));
    },
    20_000,
    jetstream ? 'a JetStream meta leader' : 'routes between the servers',
    100,
  );
  return {
    servers,
    urls: servers.map((s) => s.url),
    kill: (server, signal) => server.proc.kill(signal),
    stop: async () => {
      await Promise.all(servers.map((s) => stopProcess(s.proc, 'SIGKILL')));
    },
  };
}

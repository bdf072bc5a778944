// Highly available brokers from Debian's packages on loopback: a Redis master, its replica and
// three sentinels (`redis-server conf --sentinel`, what redis-sentinel runs), and a NATS
// cluster of three servers with routes and clustered JetStream. Every process is tracked and
// killed by its pid, never by name.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, startRedis, waitForPort, type Broker } from './brokers.js';
import { until } from './wait.js';

const owned = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of owned) p.kill('SIGKILL');
});

function own(proc: ChildProcess): ChildProcess {
  owned.add(proc);
  proc.once('exit', () => owned.delete(proc));
  proc.unref();
  return proc;
}

async function stopProc(proc: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGCONT');
  proc.kill(signal);
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

async function redisInfo(port: number, section: string): Promise<string> {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await r.connect();
    return await r.info(section);
  } catch {
    return '';
  } finally {
    r.disconnect();
  }
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
  await until(async () => (await redisInfo(replica.port, 'replication')).includes('master_link_status:up'), 10_000, 'replica in sync');
  const dir = mkdtempSync(join(tmpdir(), 'chorus-sentinels-'));
  const sentinelPorts: number[] = [];
  const sentinels: ChildProcess[] = [];
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    const conf = join(dir, `sentinel-${i}.conf`);
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${master.port} 2`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 5000`,
        `sentinel parallel-syncs ${name} 1`,
        '',
      ].join('\n'),
    );
    sentinels.push(own(spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' })));
    sentinelPorts.push(port);
    await waitForPort(port);
  }
  const currentMasterPort = async (): Promise<number | null> => {
    const s = new Redis({
      port: sentinelPorts[0],
      host: '127.0.0.1',
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    try {
      await s.connect();
      const addr = (await s.call('SENTINEL', 'get-master-addr-by-name', name)) as [string, string] | null;
      return addr ? Number(addr[1]) : null;
    } catch {
      return null;
    } finally {
      s.disconnect();
    }
  };
  // Every sentinel knows the replica and its peers before a test kills anything.
  await until(
    async () => {
      const s = new Redis({
        port: sentinelPorts[0],
        host: '127.0.0.1',
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      try {
        await s.connect();
        const info = await s.info('sentinel');
        return /slaves=1,sentinels=3/.test(info);
      } catch {
        return false;
      } finally {
        s.disconnect();
      }
    },
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
      await Promise.all(sentinels.map((p) => stopProc(p, 'SIGKILL')));
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
    const proc = own(spawn('nats-server', args, { stdio: 'ignore' }));
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
      await Promise.all(servers.map((s) => stopProc(s.proc, 'SIGKILL')));
    },
  };
}

// Real brokers from Debian's packages, on free loopback ports in temp dirs,
// stopped by pid: redis-server, a 6-node Redis Cluster, nats-server (JetStream on or off).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Ports handed out by this process: the kernel may offer a just-released port again. */
const handedOut = new Set<number>();

export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((res, rej) => {
      const srv = createServer();
      srv.once('error', rej);
      srv.listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => res(p));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no fresh free port after 50 tries');
}

/**
 * A port for a node that is restarted on the same port: outside the kernel's ephemeral
 * range, so no outgoing connection of the balancers can be holding it in between.
 */
export async function stablePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((res) => {
      const srv = createServer();
      srv.once('error', () => res(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => res(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port in 20000-32000');
}

export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((res) => {
      const s = new Socket();
      s.once('connect', () => (s.destroy(), res(true)));
      s.once('error', () => (s.destroy(), res(false)));
      s.connect(port, '127.0.0.1');
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listening on ${port} after ${timeoutMs} ms`);
}

export interface Broker {
  port: number;
  proc: ChildProcess;
  /** SIGKILL or SIGTERM and wait */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** start again on the same port (and same dir) */
  restart(): Promise<void>;
  pause(): void;
  resume(): void;
}

/** Brokers still running when the test file's process exits are killed, never left behind. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

/** Tracks a broker process; unref'd so one a failed hook could not stop never holds the test file open. */
export function tracked(proc: ChildProcess): ChildProcess {
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  proc.unref();
  return proc;
}

/** Signals a process (thawed first, SIGKILL after 5 s) and waits for it to exit. */
export async function stopProcess(proc: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGCONT');
  proc.kill(signal);
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

function managed(startRaw: () => ChildProcess, port: number): Broker {
  const start = () => tracked(startRaw());
  const broker: Broker = {
    port,
    proc: start(),
    stop: (signal = 'SIGTERM') => stopProcess(broker.proc, signal),
    async restart() {
      await broker.stop();
      broker.proc = start();
      await waitForPort(port);
    },
    pause: () => broker.proc.kill('SIGSTOP'),
    resume: () => broker.proc.kill('SIGCONT'),
  };
  return broker;
}

export async function startRedis(extraArgs: string[] = []): Promise<Broker> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'chorus-redis-'));
  const start = () =>
    spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extraArgs], {
      stdio: 'ignore',
    });
  const broker = managed(start, port);
  await waitForPort(port);
  return broker;
}

export interface RedisCluster {
  nodes: Broker[];
  /** "127.0.0.1:p1,127.0.0.1:p2,..." for REDIS_CLUSTER_NODES */
  seeds: string;
  stop(): Promise<void>;
  /** Every node stopped, then started again (same ports and nodes.conf: the same cluster, its data gone). */
  restart(): Promise<void>;
}

/** Six redis-server processes joined by `redis-cli --cluster create` (3 masters, 3 replicas). */
export async function startRedisCluster(): Promise<RedisCluster> {
  const nodes: Broker[] = [];
  for (let i = 0; i < 6; i++) {
    // The cluster bus port is set explicitly: the default (port + 10000) may be taken or past 65535.
    const [port, busPort] = [await freePort(), await freePort()];
    const dir = mkdtempSync(join(tmpdir(), `chorus-rc${i}-`));
    const start = () =>
      spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--cluster-port',
          String(busPort),
          '--bind',
          '127.0.0.1',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, 'nodes.conf'),
          '--cluster-node-timeout',
          '2000',
          '--save',
          '',
          '--appendonly',
          'no',
          '--dir',
          dir,
        ],
        { stdio: 'ignore' },
      );
    const b = managed(start, port);
    nodes.push(b);
  }
  try {
    return await formCluster(nodes);
  } catch (err) {
    // Never leave servers behind: they would keep the test process alive.
    await Promise.all(nodes.map((n) => n.stop()));
    throw err;
  }
}

async function formCluster(nodes: Broker[]): Promise<RedisCluster> {
  await Promise.all(nodes.map((n) => waitForPort(n.port)));
  const addrs = nodes.map((n) => `127.0.0.1:${n.port}`);
  const created = spawnSync('redis-cli', ['--cluster', 'create', ...addrs, '--cluster-replicas', '1', '--cluster-yes'], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}\n${created.stderr}`);
  await clusterOk(nodes);
  const stop = async () => void (await Promise.all(nodes.map((n) => n.stop())));
  const restart = async () => {
    await stop();
    await Promise.all(nodes.map((n) => n.restart()));
    await clusterOk(nodes);
  };
  return { nodes, seeds: addrs.join(','), stop, restart };
}

/** Waits until every node reports cluster_state:ok. */
async function clusterOk(nodes: Broker[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const n of nodes) {
    for (;;) {
      const info = spawnSync('redis-cli', ['-p', String(n.port), 'cluster', 'info'], { encoding: 'utf8' }).stdout;
      if (info.includes('cluster_state:ok')) break;
      if (Date.now() > deadline) throw new Error(`cluster not ok on ${n.port}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** nats-server with JetStream (its store in a temp dir), or plain core NATS with `jetstream: false`. */
export async function startNats(extraArgs: string[] = [], options: { jetstream?: boolean } = {}): Promise<Broker> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'chorus-nats-'));
  const js = options.jetstream === false ? [] : ['-js', '-sd', dir];
  const start = () => spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), ...js, ...extraArgs], { stdio: 'ignore' });
  const broker = managed(start, port);
  await waitForPort(port);
  return broker;
}

export interface Mariadb extends Broker {
  user: string;
  password: string;
  database: string;
  /** runs SQL through the mariadb client */
  sql(statement: string): string;
}

/** A throwaway mariadbd: fresh datadir, root with a password, one database. */
export async function startMariadb(): Promise<Mariadb> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'chorus-mariadb-'));
  const datadir = join(dir, 'data');
  const socket = join(dir, 'mysqld.sock');
  const init = spawnSync(
    'mariadb-install-db',
    [`--datadir=${datadir}`, '--user=root', '--auth-root-authentication-method=normal', '--skip-test-db'],
    { encoding: 'utf8', timeout: 60_000 },
  );
  if (init.status !== 0) throw new Error(`mariadb-install-db failed: ${init.stderr}`);
  const start = () =>
    spawn(
      'mariadbd',
      [
        `--datadir=${datadir}`,
        `--port=${port}`,
        '--bind-address=127.0.0.1',
        `--socket=${socket}`,
        '--user=root',
        '--skip-log-bin',
        '--innodb-buffer-pool-size=16M',
        `--pid-file=${join(dir, 'pid')}`,
      ],
      { stdio: 'ignore' },
    );
  const broker = managed(start, port);
  await waitForPort(port, 30_000);
  const password = 'chorus-test-pw';
  const database = 'chorus';
  const run = (statement: string, usePassword: boolean) => {
    const r = spawnSync('mariadb', ['--socket', socket, '-uroot', ...(usePassword ? [`-p${password}`] : []), '-N', '-B', '-e', statement], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    if (r.status !== 0) throw new Error(`mariadb: ${r.stderr}`);
    return r.stdout;
  };
  run(
    `ALTER USER 'root'@'localhost' IDENTIFIED BY '${password}'; CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '${password}'; GRANT ALL ON *.* TO 'root'@'127.0.0.1'; CREATE DATABASE ${database}; FLUSH PRIVILEGES;`,
    false,
  );
  return Object.assign(broker, { user: 'root', password, database, sql: (s: string) => run(`USE ${database}; ${s}`, true) });
}

/**
 * Waits until every replica of the cluster has synced with its master (`master_link_status:up`).
 * `startRedisCluster` returns once the slots are served, a few seconds before that; a replica that
 * never synced refuses to take over (cluster-replica-validity-factor), so failover tests wait here first.
 */
export async function waitForReplicasSynced(cluster: RedisCluster, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const replicas = cluster.nodes.length / 2;
  for (;;) {
    const synced = cluster.nodes.filter((n) =>
      spawnSync('redis-cli', ['-p', String(n.port), 'INFO', 'replication'], { encoding: 'utf8' }).stdout.includes('master_link_status:up'),
    ).length;
    if (synced >= replicas) return;
    if (Date.now() > deadline) throw new Error(`only ${synced} of ${replicas} replicas synced after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** redis-cli against a loopback port; its stdout ("" when it failed). */
export function redisCli(port: number, ...args: string[]): string {
  const r = spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8', timeout: 5000 });
  return r.stdout ?? '';
}

/** The master serving a topic's hash slot, from CLUSTER NODES. */
export function masterFor(cluster: RedisCluster, topic: string): Broker {
  const live = cluster.nodes.find((n) => n.proc.exitCode === null && n.proc.signalCode === null)!;
  const slot = Number(redisCli(live.port, 'CLUSTER', 'KEYSLOT', topic).trim());
  for (const line of redisCli(live.port, 'CLUSTER', 'NODES').trim().split('\n')) {
    const [, addr, flags, , , , , , ...slots] = line.split(' ');
    if (!flags.split(',').includes('master') || flags.includes('fail')) continue;
    const port = Number(addr.split('@')[0].split(':')[1]);
    for (const range of slots) {
      const [lo, hi] = range.split('-').map(Number);
      if (slot >= lo && slot <= (hi ?? lo)) return cluster.nodes.find((n) => n.port === port)!;
    }
  }
  throw new Error(`no master for slot ${slot}`);
}

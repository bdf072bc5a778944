// Real brokers on free loopback ports in temp dirs, stopped by pid: redis-server,
// a 6-node Redis Cluster, nats-server. Plain-JS copy of test/helpers/brokers.ts.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Ports handed out by this process: the kernel may offer a just-released port again. */
const handedOut = new Set();

export async function freePort() {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise((res, rej) => {
      const srv = createServer();
      srv.once('error', rej);
      srv.listen(0, '127.0.0.1', () => {
        const { port: p } = srv.address();
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

async function waitForPort(port, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise((res) => {
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

function managed(proc, port) {
  const exited = new Promise((r) => proc.once('exit', r));
  return {
    port,
    proc,
    pid: proc.pid,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export async function startRedis() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'chorus-bench-redis-'));
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: 'ignore',
  });
  const b = managed(proc, port);
  await waitForPort(port);
  return { ...b, env: { ADAPTER_DRIVER: 'redis', DATABASE_REDIS_HOST: '127.0.0.1', DATABASE_REDIS_PORT: String(port) }, pids: [proc.pid] };
}

/** Six redis-server processes joined by `redis-cli --cluster create` (3 masters, 3 replicas). */
export async function startRedisCluster() {
  const nodes = [];
  for (let i = 0; i < 6; i++) {
    // The cluster bus port is set explicitly: the default (port + 10000) may be taken or past 65535.
    const [port, busPort] = [await freePort(), await freePort()];
    const dir = mkdtempSync(join(tmpdir(), `chorus-bench-rc${i}-`));
    const proc = spawn(
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
    nodes.push(managed(proc, port));
  }
  const stop = async () => void (await Promise.all(nodes.map((n) => n.stop())));
  try {
    await Promise.all(nodes.map((n) => waitForPort(n.port)));
    const addrs = nodes.map((n) => `127.0.0.1:${n.port}`);
    const created = spawnSync('redis-cli', ['--cluster', 'create', ...addrs, '--cluster-replicas', '1', '--cluster-yes'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}\n${created.stderr}`);
    const deadline = Date.now() + 30_000;
    for (const n of nodes) {
      for (;;) {
        const info = spawnSync('redis-cli', ['-p', String(n.port), 'cluster', 'info'], { encoding: 'utf8' }).stdout;
        if (info.includes('cluster_state:ok')) break;
        if (Date.now() > deadline) throw new Error(`cluster not ok on ${n.port}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    return { nodes, stop, pids: nodes.map((n) => n.pid), env: { ADAPTER_DRIVER: 'redis-cluster', REDIS_CLUSTER_NODES: addrs.join(',') } };
  } catch (err) {
    await stop();
    throw err;
  }
}

export async function startNats() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'chorus-bench-nats-'));
  const proc = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], { stdio: 'ignore' });
  const b = managed(proc, port);
  await waitForPort(port);
  return { ...b, env: { ADAPTER_DRIVER: 'nats', NATS_SERVERS: `nats://127.0.0.1:${port}` }, pids: [proc.pid] };
}

export const BROKERS = { redis: startRedis, 'redis-cluster': startRedisCluster, nats: startNats };

// The project's own nginx and HAProxy configs run for real in front of test nodes:
// only hosts and ports are substituted, so what is tested is what ships.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { join } from 'node:path';
import { freePort, waitForPort } from './brokers.js';
import { ROOT } from './node.js';

/**
 * haproxy.cfg's `maxconn 50000` needs ~100k file descriptors; test machines may cap
 * the hard limit lower (HAProxy then refuses to start). `-n` lowers only the connection
 * limit, from the command line, so the config file itself stays as shipped.
 */
export const HAPROXY_MAXCONN = ['-n', '4096'];

export interface Balancer {
  name: 'nginx' | 'haproxy';
  port: number;
  proc: ChildProcess;
  output: string[];
  stop(): Promise<void>;
}

export function runBalancer(name: Balancer['name'], cmd: string, args: string[], port: number): Balancer {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  proc.stdout.on('data', (c) => output.push(String(c)));
  proc.stderr.on('data', (c) => output.push(String(c)));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  return {
    name,
    port,
    proc,
    output,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** nginx/nginx.conf with the upstream's one server line replaced by the nodes, and `listen 80` by a free port. */
export function nginxConfig(nodePorts: number[], port: number): string {
  const src = readFileSync(join(ROOT, 'nginx/nginx.conf'), 'utf8');
  let servers = 0;
  let listens = 0;
  const out = src
    .replace(/^(\s*)server chorus:6001(.*)$/m, (_m, indent: string, rest: string) => {
      servers++;
      return nodePorts.map((p) => `${indent}server 127.0.0.1:${p}${rest}`).join('\n');
    })
    .replace(/\blisten 80;/, () => (listens++, `listen ${port};`));
  assert.equal(servers, 1, 'nginx.conf: upstream line `server chorus:6001` not found');
  assert.equal(listens, 1, 'nginx.conf: `listen 80;` not found');
  return out;
}

/** haproxy/haproxy.cfg with servers chorus-N:6001 pointed at three nodes and the two binds on free ports. */
export function haproxyConfig(nodePorts: number[], port: number, statsPort: number): string {
  const src = readFileSync(join(ROOT, 'haproxy/haproxy.cfg'), 'utf8');
  let servers = 0;
  const out = src
    .replace(/chorus-(\d):6001/g, (_m, n: string) => (servers++, `127.0.0.1:${nodePorts[Number(n) - 1]}`))
    .replace('bind *:80\n', `bind *:${port}\n`)
    .replace('bind *:8404\n', `bind *:${statsPort}\n`);
  assert.equal(servers, 3, 'haproxy.cfg: expected servers chorus-1..3:6001');
  assert.ok(out.includes(`bind *:${port}\n`) && out.includes(`bind *:${statsPort}\n`), 'haproxy.cfg: binds *:80 and *:8404 not found');
  return out;
}

/** HAProxy's stats CSV: server name -> status (UP, DOWN, ...). */
export function haproxyStatus(statsPort: number): Promise<Map<string, string>> {
  return new Promise((res, rej) => {
    const req = httpGet({ host: '127.0.0.1', port: statsPort, path: '/stats;csv', timeout: 2000 }, (r) => {
      let body = '';
      r.on('data', (c) => (body += c));
      r.on('end', () => {
        const status = new Map<string, string>();
        for (const line of body.split('\n')) {
          const cols = line.split(',');
          if (cols[0] === 'chorus_nodes' && cols[1] !== 'BACKEND' && cols[1] !== 'FRONTEND') status.set(cols[1], cols[17]);
        }
        res(status);
      });
    });
    req.on('timeout', () => req.destroy(new Error('stats timeout')));
    req.on('error', rej);
  });
}

export interface Balancers {
  nginx: Balancer;
  haproxy: Balancer;
  statsPort: number;
  nginxArgs: string[];
  haproxyFile: string;
  stop(): Promise<void>;
}

/** Both shipped balancers in front of three node ports, configs written into `dir`; resolves once both listen. */
export async function startBalancers(dir: string, nodePorts: number[]): Promise<Balancers> {
  const nginxPort = await freePort();
  writeFileSync(join(dir, 'nginx.conf'), nginxConfig(nodePorts, nginxPort));
  const nginxArgs = [
    '-c',
    join(dir, 'nginx.conf'),
    '-p',
    dir,
    '-e',
    join(dir, 'error.log'),
    '-g',
    `daemon off; pid ${join(dir, 'nginx.pid')}; error_log ${join(dir, 'error.log')};`,
  ];
  const nginx = runBalancer('nginx', 'nginx', nginxArgs, nginxPort);
  const haproxyPort = await freePort();
  const statsPort = await freePort();
  const haproxyFile = join(dir, 'haproxy.cfg');
  writeFileSync(haproxyFile, haproxyConfig(nodePorts, haproxyPort, statsPort));
  const haproxy = runBalancer('haproxy', 'haproxy', ['-f', haproxyFile, '-db', ...HAPROXY_MAXCONN], haproxyPort);
  const stop = async () => void (await Promise.all([nginx.stop(), haproxy.stop()]));
  await Promise.all([waitForPort(nginx.port), waitForPort(haproxy.port), waitForPort(statsPort)]).catch(async (err) => {
    await stop();
    throw new Error(`${(err as Error).message}\nnginx: ${nginx.output.join('')}\nhaproxy: ${haproxy.output.join('')}`);
  });
  return { nginx, haproxy, statsPort, nginxArgs, haproxyFile, stop };
}

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
    // Addresses need no `resolve` (and Debian's nginx 1.22 does not know it).
    .replace(/^(\s*)server chorus:6001 resolve(.*)$/m, (_m, indent: string, rest: string) => {
      servers++;
      return nodePorts.map((p) => `${indent}server 127.0.0.1:${p}${rest}`).join('\n');
    })
    .replace(/\blisten 80;/, () => (listens++, `listen ${port};`));
  assert.equal(servers, 1, 'nginx.conf: upstream line `server chorus:6001 resolve` not found');
  assert.equal(listens, 1, 'nginx.conf: `listen 80;` not found');
  return out;
}

const SERVER_TEMPLATE = /^(\s*)server-template chorus 1-20 chorus:6001 (.*)$/m;

/** haproxy/haproxy.cfg with its binds on free ports (`body` edits the rest first). */
function haproxyWith(port: number, statsPort: number, body: (src: string) => string): string {
  const out = body(readFileSync(join(ROOT, 'haproxy/haproxy.cfg'), 'utf8'))
    .replace('bind *:80\n', `bind *:${port}\n`)
    .replace('bind *:8404\n', `bind *:${statsPort}\n`);
  assert.ok(out.includes(`bind *:${port}\n`) && out.includes(`bind *:${statsPort}\n`), 'haproxy.cfg: binds *:80 and *:8404 not found');
  return out;
}

/** haproxy/haproxy.cfg with its server template replaced by fixed servers node1..N on loopback ports. */
export function haproxyConfig(nodePorts: number[], port: number, statsPort: number): string {
  return haproxyWith(port, statsPort, (src) => {
    assert.match(src, SERVER_TEMPLATE, 'haproxy.cfg: `server-template chorus 1-20 chorus:6001 ...` not found');
    return src.replace(SERVER_TEMPLATE, (_m, indent: string) =>
      nodePorts.map((p, i) => `${indent}server node${i + 1} 127.0.0.1:${p} check`).join('\n'),
    );
  });
}

/** haproxy/haproxy.cfg as shipped (the template on the name `chorus`), asking `dnsPort` instead of Docker's DNS, nodes on `nodePort`. */
export function haproxyResolvingConfig(dnsPort: number, nodePort: number, port: number, statsPort: number): string {
  return haproxyWith(port, statsPort, (src) => {
    assert.match(src, SERVER_TEMPLATE, 'haproxy.cfg: `server-template chorus 1-20 chorus:6001 ...` not found');
    assert.match(src, /nameserver docker 127\.0\.0\.11:53/, 'haproxy.cfg: the docker nameserver line not found');
    return src
      .replace(SERVER_TEMPLATE, (_m, indent: string, rest: string) => `${indent}server-template chorus 1-20 chorus:${nodePort} ${rest}`)
      .replace('nameserver docker 127.0.0.11:53', `nameserver docker 127.0.0.1:${dnsPort}`);
  });
}

export interface HaproxyServer {
  name: string;
  /** UP, DOWN, MAINT, ... */
  status: string;
  /** host:port it points at now (a template slot without an address has none) */
  addr: string;
}

/** HAProxy's stats CSV: the servers of the chorus_nodes backend. */
export function haproxyServers(statsPort: number): Promise<HaproxyServer[]> {
  return new Promise((res, rej) => {
    const req = httpGet({ host: '127.0.0.1', port: statsPort, path: '/stats;csv', timeout: 2000 }, (r) => {
      let body = '';
      r.on('data', (c) => (body += c));
      r.on('end', () => {
        const lines = body.split('\n');
        const header = (lines[0] ?? '').replace(/^# /, '').split(',');
        const [statusAt, addrAt] = [header.indexOf('status'), header.indexOf('addr')];
        const servers: HaproxyServer[] = [];
        for (const line of lines.slice(1)) {
          const cols = line.split(',');
          if (cols[0] !== 'chorus_nodes' || cols[1] === 'BACKEND' || cols[1] === 'FRONTEND') continue;
          servers.push({ name: cols[1], status: cols[statusAt] ?? '', addr: cols[addrAt] ?? '' });
        }
        res(servers);
      });
    });
    req.on('timeout', () => req.destroy(new Error('stats timeout')));
    req.on('error', rej);
  });
}

/** HAProxy's stats CSV: server name -> status (UP, DOWN, ...). */
export async function haproxyStatus(statsPort: number): Promise<Map<string, string>> {
  return new Map((await haproxyServers(statsPort)).map((s) => [s.name, s.status]));
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

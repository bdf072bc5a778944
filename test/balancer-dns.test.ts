// The shipped balancer configs follow scaling: the nodes are whatever the name `chorus`
// resolves to, looked up again every few seconds. HAProxy (Debian's 2.6) runs the shipped
// haproxy.cfg live, asking a DNS server on loopback instead of Docker's: nodes added to the
// name are health-checked and take connections, nodes removed from it stop getting any.
// nginx's `resolve` needs 1.27.3, newer than Debian's 1.22: its config is checked, not run.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { freePort, waitForPort } from './helpers/brokers.js';
import { HAPROXY_MAXCONN, haproxyResolvingConfig, haproxyServers, nginxConfig, runBalancer, type Balancer } from './helpers/balancers.js';
import { startFakeDns, type FakeDns } from './helpers/fake-dns.js';
import { ROOT, startNode, type ChorusNode } from './helpers/node.js';
import { until } from './helpers/wait.js';
import { spawnSync } from 'node:child_process';

const HOSTS = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6'];

/** Opens a WebSocket through the balancer from `source` and resolves the node's socket id. */
function connectVia(port: number, source: string): Promise<{ ws: WebSocket; socketId: string }> {
  return new Promise((res, rej) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/app/app-key?protocol=7&client=js&version=8.4.0`, { localAddress: source });
    const timer = setTimeout(() => rej(new Error(`no connection_established from ${source}`)), 5000);
    ws.once('message', (buf) => {
      clearTimeout(timer);
      const frame = JSON.parse(buf.toString()) as { event: string; data: string };
      if (frame.event !== 'pusher:connection_established') return rej(new Error(buf.toString()));
      res({ ws, socketId: (JSON.parse(frame.data) as { socket_id: string }).socket_id });
    });
    ws.once('error', (err) => {
      clearTimeout(timer);
      rej(err);
    });
  });
}

async function connectedCount(node: ChorusNode): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${node.metricsPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('chorus_connected'));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('balancers follow scaling', () => {
  const nodes: ChorusNode[] = [];
  const sockets: WebSocket[] = [];
  let dns: FakeDns | undefined;
  let haproxy: Balancer | undefined;

  after(async () => {
    for (const s of sockets) s.terminate();
    await haproxy?.stop();
    await Promise.all(nodes.map((n) => n.stop()));
    await dns?.close();
  });

  it('HAProxy: nodes added to the name take connections; nodes removed from it are dropped', async () => {
    dns = await startFakeDns();
    const nodePort = await freePort();
    const startAt = async (host: string) => nodes.push(await startNode({ config: { host, port: nodePort } }));
    for (const host of HOSTS.slice(0, 3)) await startAt(host);
    dns.set('chorus', HOSTS.slice(0, 3));

    const dir = mkdtempSync(join(tmpdir(), 'chorus-haproxy-dns-'));
    const [port, statsPort] = [await freePort(), await freePort()];
    const file = join(dir, 'haproxy.cfg');
    writeFileSync(file, haproxyResolvingConfig(dns.port, nodePort, port, statsPort));
    const check = spawnSync('haproxy', ['-c', '-f', file, ...HAPROXY_MAXCONN], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stderr + check.stdout);
    haproxy = runBalancer('haproxy', 'haproxy', ['-f', file, '-db', ...HAPROXY_MAXCONN], port);
    await Promise.all([waitForPort(port), waitForPort(statsPort)]);

    const upAt = async () =>
      (await haproxyServers(statsPort))
        .filter((s) => s.status === 'UP')
        .map((s) => s.addr.split(':')[0])
        .sort();
    await until(async () => (await upAt()).join() === HOSTS.slice(0, 3).join(), 15_000, 'the three first nodes UP');

    // Scale to five: two more nodes, and the name says so.
    for (const host of HOSTS.slice(3)) await startAt(host);
    dns.set('chorus', HOSTS);
    await until(async () => (await upAt()).join() === HOSTS.join(), 20_000, 'all five nodes UP after the name changed');
    // Source hashing spreads clients by address: from enough addresses, the new nodes get some.
    for (let i = 1; i <= 40; i++) sockets.push((await connectVia(port, `127.0.1.${i}`)).ws);
    const counts = await Promise.all(nodes.map(connectedCount));
    assert.equal(
      counts.reduce((a, b) => a + b, 0),
      40,
    );
    assert.ok(counts[3] + counts[4] > 0, `the added nodes took connections: ${counts.join(', ')}`);

    // Scale down to two: the slots of the others lose their address.
    dns.set('chorus', HOSTS.slice(0, 2));
    await until(async () => (await upAt()).join() === HOSTS.slice(0, 2).join(), 20_000, 'only the two remaining nodes UP');
    for (const s of sockets.splice(0)) s.terminate();
    for (let i = 41; i <= 60; i++) sockets.push((await connectVia(port, `127.0.1.${i}`)).ws);
    await until(async () => (await Promise.all(nodes.slice(2).map(connectedCount))).every((c) => c === 0), 5000, 'none on the removed');
    assert.ok(dns.queries > 3, 'HAProxy asked again');
  });

  it('nginx: the shipped upstream re-resolves the name (resolver, zone, resolve); rendered for loopback it passes nginx -t', () => {
    const shipped = readFileSync(join(ROOT, 'nginx/nginx.conf'), 'utf8');
    assert.match(shipped, /^\s*resolver 127\.0\.0\.11 valid=5s ipv6=off;$/m);
    assert.match(shipped, /upstream chorus \{[^}]*\n\s*zone chorus_nodes 64k;[^}]*\n\s*server chorus:6001 resolve /);
    const dir = mkdtempSync(join(tmpdir(), 'chorus-nginx-t-'));
    writeFileSync(join(dir, 'nginx.conf'), nginxConfig([6001, 6002], 8080));
    const t = spawnSync(
      'nginx',
      ['-t', '-c', join(dir, 'nginx.conf'), '-p', dir, '-e', join(dir, 'error.log'), '-g', `pid ${join(dir, 'nginx.pid')};`],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(t.status, 0, t.stderr);
  });
});

// The compose files, run for real: a private dockerd, local stand-ins for the images they name
// (helpers/docker-standins.ts), the project's Dockerfile built, docker-compose.yml brought up,
// then the multinode file at --scale chorus=3, scaled to 5 under a subscribed client, and one
// node stopped (its clients get 4200 and come back through nginx on another). Containers are
// reached only through ports published on loopback. Skipped, with the reason, where dockerd,
// mmdebstrap or the Debian mirror are not available; never silently.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { buildStandIns, dockerSkipReason, startPrivateDocker, type PrivateDocker } from './helpers/docker-standins.js';
import { DEMO_APP, ROOT } from './helpers/node.js';
import { serverSdk, until } from './helpers/clients.js';

let skip: string | null = dockerSkipReason();
let docker: PrivateDocker | null = null;
/** the files the multinode project was brought up with (to take it down the same way) */
let multinodeFiles: string[] = [];
const tempDirs: string[] = [];

interface Sock {
  ws: WebSocket;
  frames: Array<{ event: string; channel?: string; data?: unknown }>;
  forwardedFor: string;
  closeCode: number | null;
}

/** A raw Pusher socket through `port`, presenting `forwardedFor` (nginx keys ip_hash on it here). */
function socketVia(port: number, forwardedFor: string): Promise<Sock> {
  return new Promise((res, rej) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/app/${DEMO_APP.key}?protocol=7&client=js&version=8.4.0`, {
      headers: { 'X-Forwarded-For': forwardedFor },
    });
    const sock: Sock = { ws, frames: [], forwardedFor, closeCode: null };
    ws.once('close', (code) => (sock.closeCode = code));
    ws.on('message', (buf) => {
      const frame = JSON.parse(buf.toString()) as Sock['frames'][number];
      sock.frames.push(frame);
      if (frame.event === 'pusher:connection_established') res(sock);
    });
    ws.once('error', rej);
    setTimeout(() => rej(new Error(`no connection through :${port}`)), 10_000).unref();
  });
}

function subscribe(sock: Sock, channel: string): Promise<void> {
  sock.ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel } }));
  return until(
    () => sock.frames.some((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === channel),
    10_000,
    'subscribed',
  );
}

const up = async (port: number) =>
  (await fetch(`http://127.0.0.1:${port}/up`, { signal: AbortSignal.timeout(3000) }).catch(() => null))?.status === 200;
const sdk = (port: number) => serverSdk({ port }, DEMO_APP, { timeout: 5000 });
const step = (what: string) => console.log(`# ${new Date().toISOString().slice(11, 19)} ${what}`);

/** Container ids of a compose service (running ones). */
function containers(project: string, file: string[], service: string): string[] {
  return docker!
    .run('docker-compose', ['-p', project, ...file.flatMap((f) => ['-f', f]), 'ps', '-q', service], 60_000, ROOT)
    .trim()
    .split('\n')
    .filter(Boolean);
}

describe('docker compose, for real', { skip: skip ?? false }, () => {
  before(async () => {
    try {
      docker = await startPrivateDocker();
      step('dockerd up');
      buildStandIns(docker);
      step('stand-in images built');
    } catch (err) {
      skip = `Docker stand-ins could not be made here: ${(err as Error).message.slice(0, 400)}`;
    }
  });

  after(async () => {
    for (const [project, files] of [
      ['chorus-one', ['docker-compose.yml']],
      ['chorus-many', multinodeFiles],
    ] as const) {
      if (files.length === 0) continue;
      try {
        docker?.run(
          'docker-compose',
          ['-p', project, ...files.flatMap((f) => ['-f', f]), 'down', '-v', '--remove-orphans', '-t', '2'],
          60_000,
          ROOT,
        );
      } catch {
        // the daemon goes below, and everything it made with it
      }
    }
    step('projects down');
    await docker?.stop();
    step('dockerd stopped');
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  });

  it('docker-compose.yml: the image builds from the Dockerfile and the node serves on :6001', async (t) => {
    if (skip) return t.skip(skip);
    const file = ['docker-compose.yml'];
    docker!.run('docker-compose', ['-p', 'chorus-one', '-f', file[0], 'up', '-d', '--build'], 600_000, ROOT);
    step('docker-compose.yml up');
    await until(() => up(6001), 60_000, 'the node answers /up on :6001', 500);
    step('node healthy');
    const sock = await socketVia(6001, '10.0.0.1');
    await subscribe(sock, 'compose-one');
    await sdk(6001).trigger('compose-one', 'hello', { n: 1 });
    await until(() => sock.frames.some((f) => f.event === 'hello'), 10_000, 'the event arrives');
    sock.ws.close();
    docker!.run('docker-compose', ['-p', 'chorus-one', '-f', file[0], 'down', '-t', '5'], 120_000, ROOT);
  });

  it('multinode: 3 nodes behind nginx, scaled to 5 under a client; a stopped node drains its clients onto the others', async (t) => {
    if (skip) return t.skip(skip);
    // Debian's nginx (the stand-in) is 1.22: no `resolve`, so it resolves the name at start and
    // is reloaded after scaling (as README says for nginx before 1.27.3). For the test only,
    // nginx keys ip_hash on X-Forwarded-For, so clients from one host can stand for many.
    const dir = mkdtempSync(join(tmpdir(), 'chorus-compose-'));
    tempDirs.push(dir);
    const shipped = readFileSync(join(ROOT, 'nginx/nginx.conf'), 'utf8');
    assert.match(shipped, / resolve /);
    const conf = shipped
      .replace(' resolve ', ' ')
      .replace('  server {\n', '  set_real_ip_from 0.0.0.0/0;\n  real_ip_header X-Forwarded-For;\n\n  server {\n');
    writeFileSync(join(dir, 'nginx.conf'), conf);
    const override = join(dir, 'override.yml');
    // Health checked every second rather than the image's 10 s, so "healthy" is seen as soon as it is true.
    writeFileSync(
      override,
      `services:\n  nginx:\n    volumes:\n      - ${join(dir, 'nginx.conf')}:/etc/nginx/nginx.conf:ro\n` +
        `  chorus:\n    healthcheck:\n      interval: 1s\n      start_period: 1s\n`,
    );
    const files = ['docker-compose.multinode.yml', override];
    multinodeFiles = files;
    const compose = (args: string[], ms = 300_000) =>
      docker!.run('docker-compose', ['-p', 'chorus-many', ...files.flatMap((f) => ['-f', f]), ...args], ms, ROOT);
    const nodes = () => containers('chorus-many', files, 'chorus');
    const healthy = (ids: string[]) =>
      ids.every((id) => docker!.run('docker', ['inspect', '-f', '{{.State.Health.Status}}', id]).trim() === 'healthy');
    /** chorus_connected of one container, summed over its apps (read inside it: no port is published). */
    const connectedOn = (id: string) => {
      const text = docker!.run('docker', [
        'exec',
        id,
        'node',
        '-e',
        "fetch('http://127.0.0.1:9601/metrics').then(r=>r.text()).then(console.log)",
      ]);
      return [...text.matchAll(/^chorus_connected(?:\{[^}]*\})? (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
    };

    compose(['up', '-d', '--build', '--scale', 'chorus=3'], 600_000);
    step('multinode up at 3');
    await until(() => nodes().length === 3 && healthy(nodes()), 90_000, 'three healthy nodes', 1000);
    await until(() => up(8080), 30_000, 'nginx answers /up on :8080', 500);
    const subscriber = await socketVia(8080, '10.1.0.1');
    await subscribe(subscriber, 'compose-many');

    step('subscribed through nginx');
    compose(['up', '-d', '--no-recreate', '--scale', 'chorus=5']);
    await until(() => nodes().length === 5 && healthy(nodes()), 90_000, 'five healthy nodes', 1000);
    step('five healthy');
    compose(['exec', '-T', 'nginx', 'nginx', '-s', 'reload'], 60_000);
    await new Promise((r) => setTimeout(r, 1000));

    // Clients from many addresses spread over the five nodes (told apart by their own counts).
    const clients: Sock[] = [];
    for (let i = 1; i <= 40; i++) clients.push(await socketVia(8080, `10.2.${i}.1`));
    const ids = nodes();
    const perNode = ids.map(connectedOn);
    assert.equal(
      perNode.reduce((a, b) => a + b, 0),
      41,
      `connections per node ${perNode.join(', ')}`,
    );
    assert.ok(perNode.filter((n) => n > 0).length >= 4, `the new nodes take connections too: ${perNode.join(', ')}`);
    console.log(`# through nginx after scaling to 5: connections per node ${perNode.join(', ')}`);

    // An event published through any node reaches subscribers on every node.
    const everyone = [subscriber, ...clients];
    for (const c of clients) await subscribe(c, 'compose-many');
    await sdk(8080).trigger('compose-many', 'everywhere', { n: 1 });
    await until(() => everyone.every((c) => c.frames.some((f) => f.event === 'everywhere')), 15_000, 'the event reaches every node');

    // docker stop of one node (SIGTERM): its clients get 4200 and come back through nginx elsewhere.
    const k = perNode.findIndex((n) => n > 0);
    step('every node reached');
    docker!.run('docker', ['stop', '-t', '15', ids[k]], 60_000);
    step('one node stopped');
    await until(
      () => everyone.filter((c) => c.closeCode !== null).length === perNode[k],
      20_000,
      `the drained node's ${perNode[k]} clients closed`,
    );
    const dropped = everyone.filter((c) => c.closeCode !== null);
    assert.deepEqual([...new Set(dropped.map((c) => c.closeCode))], [4200]);
    // Together, as pusher-js clients come back: nginx's first tries of the stopped node wait out
    // proxy_connect_timeout (its address no longer answers) before it counts the node out.
    for (const back of await Promise.all(dropped.map((c) => socketVia(8080, c.forwardedFor)))) back.ws.close();
    for (const c of everyone) c.ws.terminate();
    step('its clients back through nginx');
  });
});

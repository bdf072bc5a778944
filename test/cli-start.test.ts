// `node dist/cli.js start --config FILE` end to end: health, metrics and a
// clean SIGTERM shutdown within the grace period.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, type ChorusNode } from './helpers/node.js';
import { rawSocket, dataOf, type RawSocket } from './helpers/clients.js';

const GRACE_SECONDS = 2;

describe('cli start: one node from a config file on port 0', () => {
  let node: ChorusNode;
  let sock: RawSocket | undefined;
  before(async () => {
    node = await startNode({ config: { shutdown_grace_period: GRACE_SECONDS } });
  });
  after(async () => {
    sock?.close();
    await node?.stop();
  });

  it('listens on an ephemeral port and a separate metrics port', () => {
    assert.ok(node.port > 0);
    assert.ok(node.metricsPort !== null && node.metricsPort > 0);
    assert.notEqual(node.port, node.metricsPort);
  });

  it('GET /up answers 200 "OK"', async () => {
    const res = await fetch(`${node.url}/up`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'OK');
    assert.equal(res.headers.get('x-health-check'), 'OK');
  });

  it('GET /up/<app id> answers 200 for a known app and 404 for an unknown one', async () => {
    const ok = await fetch(`${node.url}/up/app-id`);
    assert.equal(ok.status, 200);
    assert.equal(await ok.text(), 'OK');
    const missing = await fetch(`${node.url}/up/no-such-app`);
    assert.equal(missing.status, 404);
    await missing.text();
  });

  it('GET /metrics on the metrics port is Prometheus text with chorus_connected', async () => {
    sock = await rawSocket(node);
    const established = await sock.next((f) => f.event === 'pusher:connection_established');
    assert.match(dataOf<{ socket_id: string }>(established).socket_id, /^\d+\.\d+$/);

    const res = await fetch(`http://127.0.0.1:${node.metricsPort}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await res.text();
    assert.match(text, /^# HELP chorus_connected /m);
    assert.match(text, /^# TYPE chorus_connected gauge$/m);
    assert.match(text, /^chorus_connected\{app_id="app-id"\} 1$/m);
  });

  it('the metrics port does not serve the API, and the API port does not serve metrics', async () => {
    const onMetrics = await fetch(`http://127.0.0.1:${node.metricsPort}/up`);
    assert.equal(onMetrics.status, 404);
    await onMetrics.text();
    const onApi = await fetch(`${node.url}/metrics`);
    assert.notEqual(onApi.status, 200);
    await onApi.text();
  });

  it('SIGTERM closes sockets with 4200 and exits 0 within the grace period', async () => {
    assert.ok(sock, 'socket from the metrics test');
    const errorFrame = sock.next((f) => f.event === 'pusher:error', (GRACE_SECONDS + 3) * 1000);
    node.proc.kill('SIGTERM');
    const limit = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), (GRACE_SECONDS + 2) * 1000).unref());
    const code = await Promise.race([node.exited, limit]);
    assert.equal(code, 0);
    assert.equal(((await errorFrame) as { data: { code: number } }).data.code, 4200);
    assert.equal((await sock.closed).code, 4200);
    assert.ok(
      node.logs.some((l) => l.includes('"shutdown requested"') && l.includes('SIGTERM')),
      'logged the signal',
    );
  });
});

describe('cli start: a port another node holds', () => {
  it('a second node on the same port stops with LISTEN_FAILED (exit 1) instead of sharing it', async () => {
    const first = await startNode();
    try {
      await assert.rejects(startNode({ config: { port: first.port } }), (err: Error) => {
        assert.match(err.message, /exited with 1/);
        assert.match(err.message, /LISTEN_FAILED/);
        return true;
      });
      const res = await fetch(`${first.url}/up`);
      assert.equal(res.status, 200, 'the first node still serves');
    } finally {
      await first.stop();
    }
  });
});

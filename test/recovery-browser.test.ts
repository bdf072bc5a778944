// The recovery add-on's browser build in Debian's Chromium: the page loads pusher-js's
// browser build and chorus-recovery.js from the node's test-client path, subscribes to a
// history channel, goes offline while events are published, and comes back. With the
// add-on its handler sees every event once and in order; without it the gap shows.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startNode, type ChorusNode, type TestApp } from './helpers/node.js';
import { serverSdk } from './helpers/clients.js';

const APP: TestApp = { id: 'rb-app', key: 'rb-key', secret: 'rb-secret', history: { enabled: true, channels: ['chat-'] } };
const WAIT_MS = 8000;

declare global {
  interface Window {
    Pusher: new (key: string, options: Record<string, unknown>) => BrowserPusher;
    ChorusRecovery: { enableRecovery(p: BrowserPusher): unknown };
    client: BrowserPusher;
    got: string[];
    recovered: unknown[];
    state: string;
  }
}
interface BrowserPusher {
  subscribe(name: string): { bind(event: string, cb: (data: unknown) => void): void };
  connect(): void;
  disconnect(): void;
  connection: { bind(event: string, cb: (s: { current: string }) => void): void };
}

describe('recovery add-on in Chromium (browser build)', () => {
  let node: ChorusNode;
  let context: BrowserContext;
  let profile: string;

  before(async () => {
    node = await startNode({ config: { client: { enabled: true }, app_manager: { array: { apps: [APP] } } } });
    profile = mkdtempSync(join(tmpdir(), 'chorus-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      timeout: 30_000,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update'],
    });
    context.setDefaultTimeout(WAIT_MS);
  });
  after(async () => {
    await context?.close();
    rmSync(profile, { recursive: true, force: true });
    await node?.stop();
  });

  /** A page with pusher-js (browser build) and, when asked, the add-on, subscribed to `channel`. */
  async function openPage(channel: string, withAddOn: boolean): Promise<Page> {
    const page = await context.newPage();
    await page.goto(`${node.url}/client/`);
    await page.waitForFunction(() => typeof window.Pusher === 'function');
    if (withAddOn) await page.addScriptTag({ url: `${node.url}/client/chorus-recovery.js` });
    await page.evaluate(
      ([key, port, ch, addOn]) => {
        window.got = [];
        window.recovered = [];
        const p = new window.Pusher(key, { cluster: 'mt1', wsHost: '127.0.0.1', wsPort: port, forceTLS: false, enabledTransports: ['ws'] });
        if (addOn) window.ChorusRecovery.enableRecovery(p);
        p.connection.bind('state_change', (s) => (window.state = s.current));
        const c = p.subscribe(ch);
        c.bind('e', (data) => window.got.push(String(data)));
        c.bind('chorus:recovered', (data) => window.recovered.push(data));
        c.bind('pusher:subscription_succeeded', () => (window.state = 'subscribed'));
        window.client = p;
      },
      [APP.key, node.port, channel, withAddOn] as const,
    );
    await page.waitForFunction(() => window.state === 'subscribed');
    return page;
  }

  async function publish(channel: string, from: number, to: number): Promise<void> {
    const sdk = serverSdk(node, APP);
    for (let i = from; i <= to; i++) assert.equal((await sdk.trigger(channel, 'e', String(i))).status, 200);
  }

  for (const withAddOn of [true, false]) {
    it(
      withAddOn ? 'with the add-on: every event once, in order, across going offline' : 'without it: the offline gap is lost',
      async () => {
        const channel = `chat-browser-${withAddOn ? 'on' : 'off'}`;
        const page = await openPage(channel, withAddOn);
        assert.equal(await page.evaluate(() => typeof window.ChorusRecovery), withAddOn ? 'object' : 'undefined');
        await publish(channel, 1, 5);
        await page.waitForFunction(() => window.got.length === 5);
        await page.evaluate(() => window.client.disconnect());
        await page.waitForFunction(() => window.state === 'disconnected');
        await publish(channel, 6, 10);
        await page.evaluate(() => window.client.connect());
        await page.waitForFunction(() => window.state === 'subscribed');
        await publish(channel, 11, 12);
        const want = withAddOn ? 12 : 7;
        await page.waitForFunction((n) => window.got.length >= n, want);
        await new Promise((r) => setTimeout(r, 200));
        const got = await page.evaluate(() => window.got);
        if (withAddOn) {
          assert.deepEqual(
            got,
            Array.from({ length: 12 }, (_, i) => String(i + 1)),
          );
          const recovered = (await page.evaluate(() => window.recovered)) as Array<{ replayed: number }>;
          assert.equal(recovered.length, 1);
          assert.equal(recovered[0].replayed, 5);
        } else {
          assert.deepEqual(got, ['1', '2', '3', '4', '5', '11', '12']);
        }
        await page.close();
      },
    );
  }
});

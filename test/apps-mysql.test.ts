// Apps from MySQL/MariaDB: `chorus migrate` and `chorus apps ...` against a real
// mariadbd, then a node with app_manager.driver "mysql" (cache TTL 1 s) used by
// pusher-js and the pusher SDK: rows written by SQL with Sockudo's column names,
// secret and enabled changes within the TTL, one query for a cold-key stampede
// (counted by MariaDB itself), and a database outage and recovery.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rowToApp } from '../src/apps/mysql-store.js';
import { AppStoreError } from '../src/apps/store.js';
import { startMariadb, type Mariadb } from './helpers/brokers.js';
import { runCli, startNode, writeConfig, type ChorusNode, type TestApp } from './helpers/node.js';
import {
  connected,
  dataOf,
  pusherClient,
  rawSocket,
  serverSdk,
  sleep,
  waitFor,
  type PusherClient,
  type RawSocket,
  until,
} from './helpers/clients.js';
import { signedFetch } from './helpers/signing.js';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/webhook-receiver.js';

/** The node's cache TTL in seconds, and a wait that is surely past it. */
const TTL_S = 1;
const PAST_TTL_MS = TTL_S * 1000 + 400;

/** Opens a raw socket and returns it with its first frame. */
async function firstFrame(node: ChorusNode, key: string): Promise<{ sock: RawSocket; frame: RawSocket['frames'][number] }> {
  const sock = await rawSocket(node, `/app/${encodeURIComponent(key)}?protocol=7&client=js&version=8.4.0`);
  return { sock, frame: await sock.next() };
}

/** SDK trigger; resolves the HTTP status, also for errors (the SDK rejects on non-2xx). */
async function triggerStatus(node: ChorusNode, app: TestApp, channel: string, event = 'ev', data: unknown = { n: 1 }): Promise<number> {
  try {
    return (await serverSdk(node, app).trigger(channel, event, data)).status;
  } catch (err) {
    const status = (err as { status?: number }).status;
    if (typeof status !== 'number') throw err;
    return status;
  }
}

describe('app rows', () => {
  it("a Sockudo 5 row's policy JSON wins over its flat columns; a bad policy is an error naming the row", () => {
    const app = rowToApp({
      id: 'p',
      key: 'p-key',
      secret: 'p-secret',
      max_connections: 0,
      enable_client_messages: 0,
      max_client_events_per_second: 10,
      policy: JSON.stringify({
        limits: { max_connections: 12, max_client_events_per_second: 50, decay_seconds: 1 },
        features: { enable_client_messages: true },
        channels: { allowed_origins: ['https://app.example'] },
      }),
    });
    assert.equal(app.max_connections, 12);
    assert.equal(app.max_client_events_per_second, 50);
    assert.equal(app.enable_client_messages, true);
    assert.deepEqual(app.allowed_origins, ['https://app.example']);
    assert.equal(rowToApp({ id: 'n', key: 'n-key', secret: 's', max_connections: 4, policy: null }).max_connections, 4);
    assert.throws(
      () => rowToApp({ id: 'b', key: 'b-key', secret: 's', policy: '[1]' }),
      (err: unknown) => err instanceof AppStoreError && /app row b: app\.policy must be an object/.test(err.message),
    );
    assert.throws(
      () => rowToApp({ id: 'j', key: 'j-key', secret: 's', policy: '{not json' }),
      (err: unknown) => err instanceof AppStoreError && /column policy is not valid JSON/.test(err.message),
    );
  });
});

describe('apps in MySQL', () => {
  let db: Mariadb;
  let env: Record<string, string>;
  let cfg: string;
  const cli = (args: string[], extraEnv: Record<string, string> = {}) =>
    runCli([...args, '--config', cfg], { ...env, ...extraEnv }, 20_000);

  before(async () => {
    db = await startMariadb();
    env = {
      APP_MANAGER_DRIVER: 'mysql',
      DATABASE_MYSQL_HOST: '127.0.0.1',
      DATABASE_MYSQL_PORT: String(db.port),
      DATABASE_MYSQL_USERNAME: db.user,
      DATABASE_MYSQL_PASSWORD: db.password,
      DATABASE_MYSQL_DATABASE: db.database,
    };
    cfg = writeConfig({});
  });
  after(async () => {
    await db?.stop();
  });

  describe('chorus migrate and chorus apps', () => {
    it('migrate creates the table, and running it again is fine', async () => {
      assert.equal(db.sql("SHOW TABLES LIKE 'applications'").trim(), '');
      const first = await cli(['migrate']);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, /applications ready/);
      assert.equal(db.sql("SHOW TABLES LIKE 'applications'").trim(), 'applications');
      const second = await cli(['migrate']);
      assert.equal(second.code, 0, second.stderr);
      // Sockudo's column names, the later ones included
      const columns = db
        .sql("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'chorus' AND TABLE_NAME = 'applications'")
        .trim()
        .split('\n');
      for (const c of [
        'id',
        'key',
        'secret',
        'max_connections',
        'enable_client_messages',
        'enabled',
        'max_backend_events_per_second',
        'max_client_events_per_second',
        'max_read_requests_per_second',
        'webhooks',
        'allowed_origins',
        'enable_watchlist_events',
        'enable_subscription_count',
        'history',
      ]) {
        assert.ok(columns.includes(c), `column ${c} in ${columns.join(',')}`);
      }
    });

    it('migrate adds webhooks, allowed_origins and enable_watchlist_events to an older table, keeping its rows', async () => {
      db.sql(
        'CREATE TABLE `old_apps` (`id` VARCHAR(255) PRIMARY KEY, `key` VARCHAR(255) UNIQUE NOT NULL, `secret` VARCHAR(255) NOT NULL, ' +
          '`max_connections` INT UNSIGNED NOT NULL DEFAULT 0, `enable_client_messages` BOOLEAN NOT NULL DEFAULT FALSE, ' +
          '`enabled` BOOLEAN NOT NULL DEFAULT TRUE, `max_client_events_per_second` INT UNSIGNED NOT NULL DEFAULT 10); ' +
          "INSERT INTO `old_apps` (`id`, `key`, `secret`) VALUES ('old-1', 'old-key', 'old-secret');",
      );
      const columnsOf = () =>
        db
          .sql("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'chorus' AND TABLE_NAME = 'old_apps'")
          .trim()
          .split('\n');
      assert.ok(!columnsOf().includes('webhooks'));
      const r = await cli(['migrate'], { DATABASE_MYSQL_TABLE_NAME: 'old_apps' });
      assert.equal(r.code, 0, r.stderr);
      const after1 = columnsOf();
      for (const c of ['webhooks', 'allowed_origins', 'enable_watchlist_events', 'policy', 'history'])
        assert.ok(after1.includes(c), `${c} added: ${after1.join(',')}`);
      assert.equal(db.sql("SELECT `key`, `secret` FROM `old_apps` WHERE `id` = 'old-1'").trim(), 'old-key\told-secret');
      // and again: nothing left to add
      const again = await cli(['migrate'], { DATABASE_MYSQL_TABLE_NAME: 'old_apps' });
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(columnsOf().sort(), after1.sort());
      // the old table's apps are listed with the new columns NULL
      const listed = await cli(['apps', 'list'], { DATABASE_MYSQL_TABLE_NAME: 'old_apps' });
      assert.equal(listed.code, 0, listed.stderr);
      assert.equal(listed.stdout, 'old-1\told-key\tenabled\n');
    });

    it('apps add, list, disable and enable work; a bad app exits 2', async () => {
      const add = await cli([
        'apps',
        'add',
        '--id',
        'cli-1',
        '--key',
        'cli-key',
        '--secret',
        'cli-secret',
        '--json',
        '{"enable_client_messages":true,"allowed_origins":["https://a.example"],"webhooks":[{"url":"http://127.0.0.1:9/h","event_types":["channel_vacated"]}]}',
      ]);
      assert.equal(add.code, 0, add.stderr);
      assert.equal(add.stdout, 'app cli-1 saved\n');
      const row = db
        .sql(
          "SELECT `key`, `secret`, `enable_client_messages`, `enabled`, `allowed_origins`, `webhooks` FROM `applications` WHERE `id` = 'cli-1'",
        )
        .trim()
        .split('\t');
      assert.deepEqual(row.slice(0, 4), ['cli-key', 'cli-secret', '1', '1']);
      assert.deepEqual(JSON.parse(row[4]), ['https://a.example']);
      assert.deepEqual(JSON.parse(row[5]), [{ url: 'http://127.0.0.1:9/h', event_types: ['channel_vacated'] }]);

      let list = await cli(['apps', 'list']);
      assert.equal(list.code, 0, list.stderr);
      assert.equal(list.stdout, 'cli-1\tcli-key\tenabled\n');

      const disable = await cli(['apps', 'disable', 'cli-1']);
      assert.equal(disable.code, 0, disable.stderr);
      assert.equal(db.sql("SELECT `enabled` FROM `applications` WHERE `id` = 'cli-1'").trim(), '0');
      list = await cli(['apps', 'list']);
      assert.equal(list.stdout, 'cli-1\tcli-key\tdisabled\n');

      const enable = await cli(['apps', 'enable', 'cli-1']);
      assert.equal(enable.code, 0, enable.stderr);
      assert.equal(db.sql("SELECT `enabled` FROM `applications` WHERE `id` = 'cli-1'").trim(), '1');

      // add again with the same id: an update, not a second row
      const update = await cli(['apps', 'add', '--id', 'cli-1', '--key', 'cli-key', '--secret', 'cli-secret-2']);
      assert.equal(update.code, 0, update.stderr);
      assert.equal(db.sql("SELECT COUNT(*), MAX(`secret`) FROM `applications` WHERE `id` = 'cli-1'").trim(), '1\tcli-secret-2');

      const bad = await cli(['apps', 'add', '--id', 'cli-2', '--key', 'cli-key-2']);
      assert.equal(bad.code, 2, bad.stdout + bad.stderr);
      assert.match(bad.stderr, /secret/);
      assert.equal(db.sql("SELECT COUNT(*) FROM `applications` WHERE `id` = 'cli-2'").trim(), '0');

      const missing = await cli(['apps', 'disable', 'no-such-app']);
      assert.equal(missing.code, 2, missing.stdout + missing.stderr);

      // disabling twice is not an error (the row exists, nothing changes)
      assert.equal((await cli(['apps', 'disable', 'cli-1'])).code, 0);
      assert.equal((await cli(['apps', 'disable', 'cli-1'])).code, 0);
      // a key another app holds is refused, and that app's row is untouched
      const clash = await cli(['apps', 'add', '--id', 'cli-3', '--key', 'cli-key', '--secret', 'other']);
      assert.equal(clash.code, 2, clash.stdout + clash.stderr);
      assert.match(clash.stderr, /already belongs to app cli-1/);
      assert.equal(db.sql("SELECT `id`, `secret` FROM `applications` WHERE `key` = 'cli-key'").trim(), 'cli-1\tcli-secret-2');
      assert.equal(db.sql("SELECT COUNT(*) FROM `applications` WHERE `id` = 'cli-3'").trim(), '0');
      // --json that is not JSON, or names fields no app has: usage errors, nothing written
      for (const json of ['{bad', '[1]', '{"no_such_field":1}']) {
        const r = await cli(['apps', 'add', '--id', 'cli-4', '--key', 'cli-key-4', '--secret', 's', '--json', json]);
        assert.equal(r.code, 2, `${json}: ${r.stdout}${r.stderr}`);
      }
      assert.equal(db.sql("SELECT COUNT(*) FROM `applications` WHERE `id` = 'cli-4'").trim(), '0');
      db.sql("DELETE FROM `applications` WHERE `id` = 'cli-1'");
    });
  });

  describe('a node with APP_MANAGER_DRIVER=mysql', () => {
    let node: ChorusNode;
    let hooks: WebhookReceiver;
    const clients: PusherClient[] = [];
    const sockets: RawSocket[] = [];
    /** Inserted by SQL, as Sockudo's dashboard would: NULL limits, JSON webhooks and origins. */
    const SQL_APP: TestApp = { id: 'sql-app', key: 'sql-key', secret: 'sql-secret' };
    const client = (app: TestApp) => {
      const c = pusherClient(node, { app });
      clients.push(c);
      return c;
    };

    before(async () => {
      // keyed by app key: the deliveries checked here are signed with the first secret
      hooks = await startWebhookReceiver([{ ...SQL_APP }]);
      db.sql(
        'INSERT INTO `applications` (`id`, `key`, `secret`, `max_connections`, `enable_client_messages`, `enabled`, ' +
          '`max_backend_events_per_second`, `max_client_events_per_second`, `max_read_requests_per_second`, `max_event_payload_in_kb`, ' +
          '`webhooks`, `allowed_origins`, `history`) VALUES ' +
          `('sql-app', 'sql-key', 'sql-secret', 0, 1, 1, NULL, 10, NULL, NULL, ` +
          `'[{"url":"${hooks.url}/sql","event_types":["channel_occupied"]}]', '["*"]', '{"enabled":true,"channels":["private-sql"]}')`,
      );
      node = await startNode({ config: { app_manager: { driver: 'mysql', cache: { ttl: TTL_S } } }, env });
    });
    after(async () => {
      for (const c of clients) c.disconnect();
      for (const s of sockets) s.close();
      await node?.stop();
      await hooks?.stop();
    });

    it('serves an app inserted by SQL to pusher-js and the pusher SDK, with its JSON webhooks', async () => {
      const c = client(SQL_APP);
      await connected(c);
      const ch = c.subscribe('private-sql');
      await waitFor(ch, 'pusher:subscription_succeeded');
      const got = waitFor<{ n: number }>(ch, 'hello');
      const res = await serverSdk(node, SQL_APP).trigger('private-sql', 'hello', { n: 7 });
      assert.equal(res.status, 200);
      assert.deepEqual(await got, { n: 7 });
      // the SDK's read API too
      const info = await serverSdk(node, SQL_APP).get({ path: '/channels/private-sql', params: { info: 'subscription_count' } });
      assert.equal(info.status, 200);
      assert.deepEqual(await info.json(), { occupied: true, subscription_count: 1 });
      // the history column (JSON text) was parsed: the event was kept, the API reads it back
      const history = await serverSdk(node, SQL_APP).get({ path: '/channels/private-sql/history' });
      assert.equal(history.status, 200);
      const page = (await history.json()) as { items: Array<{ event_name: string; message: { data: string } }> };
      assert.deepEqual(
        page.items.map((i) => [i.event_name, i.message.data]),
        [['hello', '{"n":7}']],
      );
      // the webhooks column (JSON text) was parsed: channel_occupied reached the receiver, signed with the secret
      await hooks.waitFor((r) => r.events('channel_occupied').some((e) => e.channel === 'private-sql'), 5000);
      const delivery = hooks.deliveries.find((d) => d.body?.events.some((e) => e.channel === 'private-sql'))!;
      assert.equal(delivery.path, '/sql');
      assert.equal(delivery.valid, true);
      // the same app over the HTTP API with a wrong secret is refused
      assert.equal(await triggerStatus(node, { ...SQL_APP, secret: 'wrong' }, 'x'), 401);
    });

    it('a changed secret takes effect within the cache TTL', async () => {
      db.sql("UPDATE `applications` SET `secret` = 'sql-secret-2' WHERE `id` = 'sql-app'");
      await sleep(PAST_TTL_MS);
      const newApp = { ...SQL_APP, secret: 'sql-secret-2' };
      assert.equal(await triggerStatus(node, SQL_APP, 'x'), 401);
      assert.equal(await triggerStatus(node, newApp, 'x'), 200);
      // channel auth on a new connection is checked against the new secret
      const good = client(newApp);
      await connected(good);
      await waitFor(good.subscribe('private-new'), 'pusher:subscription_succeeded');
      const old = client(SQL_APP);
      await connected(old);
      const err = await waitFor<{ status: number }>(old.subscribe('private-old'), 'pusher:subscription_error');
      assert.ok(err, 'subscription_error for the old secret');
      SQL_APP.secret = 'sql-secret-2';
    });

    it('disabling the app in the table takes effect within the TTL: WebSocket 4003, HTTP 403', async () => {
      db.sql("INSERT INTO `applications` (`id`, `key`, `secret`) VALUES ('dis-app', 'dis-key', 'dis-secret')");
      const app: TestApp = { id: 'dis-app', key: 'dis-key', secret: 'dis-secret' };
      const before1 = await firstFrame(node, 'dis-key');
      sockets.push(before1.sock);
      assert.equal(before1.frame.event, 'pusher:connection_established');
      assert.equal(await triggerStatus(node, app, 'x'), 200);

      db.sql("UPDATE `applications` SET `enabled` = 0 WHERE `id` = 'dis-app'");
      await sleep(PAST_TTL_MS);
      const { sock, frame } = await firstFrame(node, 'dis-key');
      assert.deepEqual(frame, { event: 'pusher:error', data: { code: 4003, message: 'App is disabled' } });
      assert.equal((await sock.closed).code, 4003);
      const http = await signedFetch(node, {
        app,
        method: 'POST',
        path: '/apps/dis-app/events',
        body: JSON.stringify({ name: 'e', channel: 'c', data: '1' }),
      });
      assert.equal(http.status, 403);
      assert.equal(typeof http.json.error, 'string');

      // and enabled again
      db.sql("UPDATE `applications` SET `enabled` = 1 WHERE `id` = 'dis-app'");
      await sleep(PAST_TTL_MS);
      const again = await firstFrame(node, 'dis-key');
      sockets.push(again.sock);
      assert.equal(again.frame.event, 'pusher:connection_established');
    });

    it('a stampede of 50 connections for a key not yet cached makes one query', async () => {
      db.sql("INSERT INTO `applications` (`id`, `key`, `secret`) VALUES ('cold-app', 'cold-key', 'cold-secret')");
      const comSelect = () => Number(db.sql("SHOW GLOBAL STATUS LIKE 'Com_select'").trim().split('\t')[1]);
      // What reading the counter itself adds (the client's own statements), measured rather than assumed.
      const c0 = comSelect();
      const c1 = comSelect();
      const selfCost = c1 - c0;
      // The general log as a second witness: the statements that name the key (the count below does not).
      db.sql("SET GLOBAL log_output = 'TABLE'; SET GLOBAL general_log = 1;");
      const before1 = comSelect();
      const opened = await Promise.all(Array.from({ length: 50 }, () => firstFrame(node, 'cold-key')));
      const after1 = comSelect();
      db.sql('SET GLOBAL general_log = 0;');
      for (const o of opened) sockets.push(o.sock);
      assert.deepEqual(
        opened.map((o) => o.frame.event),
        Array(50).fill('pusher:connection_established'),
      );
      assert.equal(after1 - before1 - selfCost, 1, `Com_select grew by ${after1 - before1} (self ${selfCost})`);
      const logged = db
        .sql("SELECT argument FROM mysql.general_log WHERE command_type = 'Query' AND argument LIKE CONCAT('%', 'cold', '-key', '%')")
        .trim()
        .split('\n');
      assert.equal(logged.length, 1, logged.join('\n'));
      assert.match(logged[0], /^SELECT \* FROM `applications` WHERE `key` = 'cold-key' LIMIT 1$/);
      for (const o of opened) o.sock.close();
    });

    it('with the database down, known apps keep working, unknown ones get 4100 and 503, and the node stays up', async () => {
      // sql-app is known (cached by key and id); make sure the cache is fresh before the outage
      assert.equal(await triggerStatus(node, SQL_APP, 'warm'), 200);
      const warm = await firstFrame(node, SQL_APP.key);
      warm.sock.close();
      await db.stop();
      await sleep(PAST_TTL_MS); // past the TTL: served stale, not fresh

      const c = client(SQL_APP);
      await connected(c);
      const ch = c.subscribe('private-outage');
      await waitFor(ch, 'pusher:subscription_succeeded');
      const got = waitFor<{ during: string }>(ch, 'news');
      assert.equal(await triggerStatus(node, SQL_APP, 'private-outage', 'news', { during: 'outage' }), 200);
      assert.deepEqual(await got, { during: 'outage' });

      const unknown = await firstFrame(node, 'never-seen-key');
      assert.equal(unknown.frame.event, 'pusher:error');
      assert.equal(dataOf<{ code: number }>(unknown.frame).code, 4100);
      assert.equal((await unknown.sock.closed).code, 4100);

      const http = await signedFetch(node, {
        app: { id: 'never-seen', key: 'never-seen-key', secret: 's' },
        method: 'POST',
        path: '/apps/never-seen/events',
        body: JSON.stringify({ name: 'e', channel: 'c', data: '1' }),
      });
      assert.equal(http.status, 503);
      assert.match(http.headers.get('content-type') ?? '', /application\/json/);
      assert.equal(typeof http.json?.error, 'string');
      assert.ok(!/chorus-test-pw/.test(http.text), 'no credentials in the error');

      assert.equal(node.proc.exitCode, null);
      assert.equal((await fetch(`${node.url}/up`)).status, 200);
      assert.ok(
        node.logs.some((l) => l.includes('serving cached apps')),
        'the stale serving is logged',
      );
    });

    it('with the database back, a new app is found again', async () => {
      await db.restart();
      db.sql("INSERT INTO `applications` (`id`, `key`, `secret`) VALUES ('late-app', 'late-key', 'late-secret')");
      let frame: RawSocket['frames'][number] | undefined;
      // bounded: the pool reconnects on demand, a failed lookup is not cached
      await until(
        async () => {
          const o = await firstFrame(node, 'late-key');
          o.sock.close();
          frame = o.frame;
          return o.frame.event === 'pusher:connection_established';
        },
        8000,
        `late-key accepted (last frame ${JSON.stringify(frame)})`,
      );
      assert.equal(await triggerStatus(node, { id: 'late-app', key: 'late-key', secret: 'late-secret' }, 'x'), 200);
      assert.equal(node.proc.exitCode, null);
    });
  });
});

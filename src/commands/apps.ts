// `chorus migrate` and `chorus apps ...`: manage apps in the MySQL table.
import type { Config } from '../config/schema.js';
import { appSchema } from '../config/schema.js';
import { ConfigError } from '../config/errors.js';
import type { MysqlAppStore } from '../apps/mysql-store.js';

export const APPS_HELP = `Usage:
  chorus migrate                       create the apps table (or add missing columns)
  chorus apps list                     list apps (id, key, enabled)
  chorus apps add --id ID --key KEY --secret SECRET [--json '{"enable_client_messages":true,...}']
  chorus apps disable ID | enable ID
All take --config FILE; the database comes from database.mysql.* / DATABASE_MYSQL_*.`;

/** mysql2 is loaded only for these commands (it costs ~80 ms at every start otherwise). */
async function store(config: Config): Promise<MysqlAppStore> {
  const { MysqlAppStore } = await import('../apps/mysql-store.js');
  const m = config.database.mysql;
  return new MysqlAppStore({
    host: m.host,
    port: m.port,
    username: m.username,
    password: m.password,
    database: m.database,
    table: m.table_name,
    poolSize: 2,
  });
}

/** The --json object; unknown fields are refused here (the schema would drop them, the INSERT would fail on them). */
function parseExtra(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ConfigError('--json is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigError('--json must be a JSON object');
  const unknown = Object.keys(value).filter((k) => !(k in appSchema.shape));
  if (unknown.length) throw new ConfigError(`--json has unknown app fields: ${unknown.join(', ')}`);
  return value as Record<string, unknown>;
}

export async function runMigrate(config: Config, out: (line: string) => void): Promise<void> {
  const s = await store(config);
  try {
    await s.migrate();
    out(`table ${config.database.mysql.table_name} ready in ${config.database.mysql.database}`);
  } finally {
    await s.close();
  }
}

export async function runApps(config: Config, args: string[], flags: Map<string, string>, out: (line: string) => void): Promise<void> {
  const [action, id] = args;
  if (config.app_manager.driver !== 'mysql' && action !== 'list') {
    throw new ConfigError('chorus apps add/disable/enable need app_manager.driver "mysql"');
  }
  if (action === 'list' && config.app_manager.driver !== 'mysql') {
    for (const app of config.app_manager.array.apps ?? []) out(`${app.id}\t${app.key}\t${app.enabled ? 'enabled' : 'disabled'}`);
    return;
  }
  const s = await store(config);
  try {
    switch (action) {
      case 'list':
        for (const app of await s.list()) out(`${app.id}\t${app.key}\t${app.enabled ? 'enabled' : 'disabled'}`);
        return;
      case 'add': {
        const extra = flags.has('json') ? parseExtra(flags.get('json')!) : {};
        const app = { ...extra, id: flags.get('id'), key: flags.get('key'), secret: flags.get('secret') };
        const checked = appSchema.safeParse(app);
        if (!checked.success) {
          const issue = checked.error.issues[0];
          throw new ConfigError(`invalid app: ${issue.path.join('.')}: ${issue.message}`);
        }
        // The upsert's ON DUPLICATE KEY also fires on the unique `key`: it would overwrite the other app's row.
        const holder = await s.findByKey(checked.data.key);
        if (holder && holder.id !== checked.data.id) throw new ConfigError(`key ${checked.data.key} already belongs to app ${holder.id}`);
        await s.upsert(app as { id: string; key: string; secret: string });
        out(`app ${app.id} saved`);
        return;
      }
      case 'disable':
      case 'enable':
        if (!id) throw new ConfigError(`chorus apps ${action} needs an app id`);
        if (!(await s.setEnabled(id, action === 'enable'))) throw new ConfigError(`no app with id ${id}`);
        out(`app ${id} ${action}d`);
        return;
      default:
        throw new ConfigError(`unknown apps action "${action ?? ''}"\n${APPS_HELP}`);
    }
  } finally {
    await s.close();
  }
}

// Apps from a MySQL/MariaDB table with Sockudo's column names (mysql2 pool).
import { readFileSync } from 'node:fs';
import mysql from 'mysql2/promise';
import type { Pool, RowDataPacket } from 'mysql2/promise';
import { foldAppPolicy } from '../config/app-policy.js';
import { appSchema } from '../config/schema.js';
import type { App } from './app.js';
import { AppStoreError, type AppStore } from './store.js';

export interface MysqlSettings {
  host: string;
  port: number;
  username: string;
  password: string;
  database: string;
  table: string;
  poolSize: number;
  /** idle connections kept (mysql2's maxIdle: more than these close after idleTimeout) */
  idleKept?: number;
}

/** Columns an older Sockudo table may lack; `migrate` adds them. */
const LATER_COLUMNS: Record<string, string> = {
  enable_user_authentication: 'BOOLEAN NULL',
  enable_watchlist_events: 'BOOLEAN NULL',
  // Chorus's own option (opt-in subscription_count events), so `apps add --json` can store it.
  enable_subscription_count: 'BOOLEAN NULL',
  webhooks: 'JSON NULL',
  allowed_origins: 'JSON NULL',
  // Sockudo 5 keeps limits and features here; when set, they win over the flat columns.
  policy: 'JSON NULL',
  // Idempotent publish per app ({enabled, ttl_seconds}; unset values take the server-wide section's).
  idempotency: 'JSON NULL',
  // Chorus's channel history settings (enabled, channels, max_messages, ttl_seconds).
  history: 'JSON NULL',
};

const JSON_COLUMNS = new Set(['webhooks', 'allowed_origins', 'policy', 'history', 'idempotency']);

const TABLE_NAME = /^[A-Za-z0-9_]{1,64}$/;

/** Turns a row into an App: 0/1 to booleans, JSON text to values, NULL to the defaults. */
export function rowToApp(row: Record<string, unknown>): App {
  const input: Record<string, unknown> = {};
  for (const [column, value] of Object.entries(row)) {
    if (value === null || value === undefined || column === 'created_at' || column === 'updated_at') continue;
    if (column.startsWith('enable') || column === 'enabled') input[column] = value === true || value === 1 || value === '1';
    else if (JSON_COLUMNS.has(column)) {
      try {
        input[column] = typeof value === 'string' ? JSON.parse(value) : Buffer.isBuffer(value) ? JSON.parse(value.toString()) : value;
      } catch {
        throw new AppStoreError(`app row ${String(row.id)}: column ${column} is not valid JSON`);
      }
    } else if (typeof value === 'bigint') input[column] = Number(value);
    else input[column] = value;
  }
  try {
    // Policy keys without a Chorus equivalent are Sockudo-only (delta compression, ...).
    foldAppPolicy(input, 'app');
  } catch (err) {
    throw new AppStoreError(`app row ${String(row.id)}: ${(err as Error).message}`);
  }
  const parsed = appSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new AppStoreError(`app row ${String(row.id)} is invalid: ${issue.path.join('.')}: ${issue.message}`);
  }
  return parsed.data;
}

export class MysqlAppStore implements AppStore {
  private readonly pool: Pool;
  private readonly table: string;

  constructor(private readonly settings: MysqlSettings) {
    if (!TABLE_NAME.test(settings.table)) throw new AppStoreError(`invalid table name "${settings.table}"`);
    this.table = settings.table;
    this.pool = mysql.createPool({
      host: settings.host,
      port: settings.port,
      user: settings.username,
      password: settings.password,
      database: settings.database,
      connectionLimit: settings.poolSize,
      maxIdle: settings.idleKept ?? settings.poolSize,
      connectTimeout: 3000,
      waitForConnections: true,
      queueLimit: 1000,
    });
  }

  private async query(sql: string, params: unknown[] = []): Promise<RowDataPacket[]> {
    try {
      const [rows] = await this.pool.query<RowDataPacket[]>(sql, params);
      return rows;
    } catch (err) {
      // Never echo connection details (they may carry the password) into the error.
      throw new AppStoreError(`app database unavailable (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }

  private async one(column: 'id' | 'key', value: string): Promise<App | null> {
    const rows = await this.query(`SELECT * FROM \`${this.table}\` WHERE \`${column}\` = ? LIMIT 1`, [value]);
    return rows.length ? rowToApp(rows[0]) : null;
  }

  findByKey(key: string): Promise<App | null> {
    return this.one('key', key);
  }

  findById(id: string): Promise<App | null> {
    return this.one('id', id);
  }

  peekById(): undefined {
    return undefined;
  }

  peekByKey(): undefined {
    return undefined;
  }

  async list(): Promise<App[]> {
    return (await this.query(`SELECT * FROM \`${this.table}\` ORDER BY \`id\``)).map(rowToApp);
  }

  /** Creates the table (Sockudo's schema) or adds the columns an older one lacks. */
  async migrate(): Promise<void> {
    const sql = readFileSync(new URL('../../migrations/001_applications.sql', import.meta.url), 'utf8')
      .replace(/--.*$/gm, '')
      .replace('`applications`', `\`${this.table}\``);
    await this.query(sql);
    const columns = await this.query(
      'SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
      [this.settings.database, this.table],
    );
    const have = new Set(columns.map((c) => String(c.name)));
    for (const [column, type] of Object.entries(LATER_COLUMNS)) {
      if (!have.has(column)) await this.query(`ALTER TABLE \`${this.table}\` ADD COLUMN \`${column}\` ${type}`);
    }
  }

  /** Inserts or replaces an app (the `chorus apps add` command). */
  async upsert(app: { id: string; key: string; secret: string } & Record<string, unknown>): Promise<void> {
    const row: Record<string, unknown> = { ...app };
    for (const column of JSON_COLUMNS) {
      if (row[column] !== undefined) row[column] = JSON.stringify(row[column]);
    }
    if (row.max_connections === undefined) row.max_connections = 0;
    if (row.max_client_events_per_second === undefined) row.max_client_events_per_second = 10;
    const columns = Object.keys(row);
    const names = columns.map((c) => `\`${c.replace(/`/g, '')}\``).join(', ');
    const updates = columns
      .filter((c) => c !== 'id')
      .map((c) => `\`${c}\` = VALUES(\`${c}\`)`)
      .join(', ');
    await this.query(
      `INSERT INTO \`${this.table}\` (${names}) VALUES (${columns.map(() => '?').join(', ')}) ON DUPLICATE KEY UPDATE ${updates}`,
      columns.map((c) => row[c]),
    );
  }

  async setEnabled(id: string, enabled: boolean): Promise<boolean> {
    const [result] = await this.pool
      .query(`UPDATE \`${this.table}\` SET \`enabled\` = ? WHERE \`id\` = ?`, [enabled, id])
      .catch((err: NodeJS.ErrnoException) => {
        throw new AppStoreError(`app database unavailable (${err.code ?? 'error'})`);
      });
    return (result as { affectedRows: number }).affectedRows > 0;
  }

  async close(): Promise<void> {
    await this.pool.end().catch(() => undefined);
  }
}

// Numbered logs in Redis Streams, one per topic. An append is one script: it takes the
// next serial, adds the entry (trimmed to the bound), refreshes the expiry and publishes
// the numbered payload on the topic, atomically, so subscribers see a topic's payloads in
// serial order whichever node appended them, and no read-modify-write runs in Node.
// The keys carry the topic as their hash tag: on Redis Cluster the log, its meta and the
// (sharded) topic live in one slot, so the script never crosses slots.
import type { Cluster, Redis } from 'ioredis';
import type { LogAppend, LogEntry, LogPosition, LogRange, LogRead, NumberedLog } from './transport.js';

type Client = Redis | Cluster;

// KEYS: meta hash (e: epoch, s: serial), stream. ARGV: see append() below.
const APPEND = `
local epoch = redis.call('HGET', KEYS[1], 'e')
local serial = tonumber(redis.call('HGET', KEYS[1], 's') or '0')
if (not epoch) or (epoch == ARGV[6] and serial < tonumber(ARGV[5])) then
  epoch = ARGV[4]
  serial = 0
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch)
end
serial = serial + 1
redis.call('HSET', KEYS[1], 's', serial)
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], serial .. '-0', 'b', ARGV[1], 'g', ARGV[2], 't', ms)
redis.call('PEXPIRE', KEYS[2], ARGV[7])
redis.call('PEXPIRE', KEYS[1], ARGV[8])
redis.call(ARGV[12], ARGV[9], ARGV[10] .. serial .. '\\n' .. epoch .. '\\n' .. ms .. ARGV[11])
return {serial, epoch, ms}
`;

// KEYS: meta, stream. ARGV: from id, to id, count, '1' for newest first.
const RANGE = `
local meta = redis.call('HMGET', KEYS[1], 'e', 's')
local entries
if ARGV[4] == '1' then
  entries = redis.call('XREVRANGE', KEYS[2], ARGV[2], ARGV[1], 'COUNT', ARGV[3])
else
  entries = redis.call('XRANGE', KEYS[2], ARGV[1], ARGV[2], 'COUNT', ARGV[3])
end
return {meta[1] or '', meta[2] or '0', entries}
`;

/** The meta outlives the entries a day, so serials go on (and a stale position reads as trimmed, not as a new epoch). */
const META_EXTRA_MS = 86_400_000;

/** Hash tag: a topic holding braces could not be its own tag; those keep their own slot (single Redis). */
const keysOf = (topic: string): [string, string] => {
  const tag = /[{}]/.test(topic) ? topic : `{${topic}}`;
  return [`${tag}:log-meta`, `${tag}:log`];
};

type RawEntry = [string, string[]];

function entryOf([id, fields]: RawEntry): LogEntry {
  const value: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) value[fields[i]] = fields[i + 1];
  return { serial: Number(id.slice(0, id.indexOf('-'))), timeMs: Number(value.t), body: value.b ?? '', tag: value.g ?? '' };
}

/** The scripts as ioredis commands: EVALSHA, loaded once per connection (EVAL again after a flush). */
interface LogCommands {
  chorusLogAppend(...args: string[]): Promise<unknown>;
  chorusLogRange(...args: string[]): Promise<unknown>;
}

export function redisLog(redis: Client, publishCommand: 'PUBLISH' | 'SPUBLISH'): NumberedLog {
  redis.defineCommand('chorusLogAppend', { numberOfKeys: 2, lua: APPEND });
  redis.defineCommand('chorusLogRange', { numberOfKeys: 2, lua: RANGE });
  const client = redis as unknown as LogCommands;
  return {
    async append(topic: string, a: LogAppend): Promise<LogPosition> {
      const [meta, stream] = keysOf(topic);
      const args = [
        a.body,
        a.tag,
        String(a.maxEntries),
        a.newEpoch,
        String(a.seen),
        a.seenEpoch,
        String(a.ttlMs),
        String(a.ttlMs + META_EXTRA_MS),
        topic,
        a.head,
        a.tail,
        publishCommand,
      ];
      const [serial, epoch, ms] = (await client.chorusLogAppend(meta, stream, ...args)) as [number, string, number];
      return { serial: Number(serial), epoch: String(epoch), timeMs: Number(ms) };
    },

    async range(topic: string, r: LogRange): Promise<LogRead> {
      const [meta, stream] = keysOf(topic);
      const from = `${Math.max(0, r.fromSerial)}-0`;
      const to = Number.isFinite(r.toSerial) ? `${r.toSerial}-0` : '+';
      const [epoch, last, raw] = (await client.chorusLogRange(meta, stream, from, to, String(r.limit), r.newestFirst ? '1' : '0')) as [
        string,
        string,
        RawEntry[],
      ];
      const entries = raw.map(entryOf);
      const lastSerial = Number(last);
      // Serials have no gaps here: the first entry must be the first asked for (oldest first).
      const first = r.newestFirst ? entries[entries.length - 1] : entries[0];
      const continuous = r.fromSerial > lastSerial || first?.serial === Math.max(1, r.fromSerial);
      return { epoch: epoch === '' ? null : epoch, lastSerial, entries, continuous };
    },
  };
}

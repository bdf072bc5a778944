// pino, JSON to stdout. Secrets are redacted wherever a config object is logged.
import { pino, type Logger } from 'pino';

export const REDACT_PATHS = [
  'secret',
  '*.secret',
  'password',
  '*.password',
  '*.*.password',
  'token',
  '*.token',
  'config.app_manager.array.apps[*].secret',
];

export function createLogger(level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({
    level,
    base: { pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

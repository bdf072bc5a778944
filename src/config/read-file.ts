// Reads a config file as Sockudo does: `${VAR}` and `${VAR:-default}` are replaced with
// environment values in the text first (an unset variable without a default stops start-up,
// naming it), then the text is parsed as TOML when the name ends in .toml, else as JSON.
import { readFileSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import { ConfigError } from './errors.js';

const PLACEHOLDER = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Sockudo's substitution: an empty variable counts as unset; values go in as written. */
export function substituteEnv(text: string, env: NodeJS.ProcessEnv, path: string): string {
  const missing = new Set<string>();
  const out = text.replace(PLACEHOLDER, (whole, name: string, fallback: string | undefined) => {
    const value = env[name];
    if (value !== undefined && value !== '') return value;
    if (fallback !== undefined) return fallback;
    missing.add(name);
    return whole;
  });
  if (missing.size > 0) {
    throw new ConfigError(
      `config file ${path} uses unset environment variables: ${[...missing].join(', ')} (set them, or write \${NAME:-default})`,
    );
  }
  return out;
}

export function readConfigFile(path: string, env: NodeJS.ProcessEnv): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  text = substituteEnv(text, env, path);
  const toml = path.toLowerCase().endsWith('.toml');
  let parsed: unknown;
  try {
    parsed = toml ? parseToml(text) : JSON.parse(text);
  } catch (err) {
    const first = (err as Error).message.split('\n')[0];
    throw new ConfigError(`config file ${path} is not valid ${toml ? 'TOML' : 'JSON'}: ${first}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`config file ${path} must hold ${toml ? 'a TOML table' : 'a JSON object'}`);
  }
  return parsed as Record<string, unknown>;
}

#!/usr/bin/env node
// Finds the Debian programs the test suite starts and installs the missing ones
// (as root), or stops with the exact command to run. Bounded: one apt run.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

// program -> Debian package. Grows with the suite.
const REQUIRED = [
  ['redis-server', 'redis-server'],
  ['redis-cli', 'redis-tools'],
  ['nats-server', 'nats-server'],
  // apps from MySQL: a throwaway MariaDB per test file
  ['mariadbd', 'mariadb-server'],
  ['mariadb-install-db', 'mariadb-server'],
  ['mariadb', 'mariadb-client'],
  ['chromium', 'chromium'],
  // operations: the shipped balancer configs run for real, compose files are checked, TLS certs made
  ['nginx', 'nginx'],
  ['haproxy', 'haproxy'],
  ['openssl', 'openssl'],
  ['docker-compose', 'docker-compose'],
  // the compose files run for real: a private dockerd and stand-in images from a Debian rootfs
  // (mmdebstrap: apt's parallel downloads, about 40% faster than debootstrap here)
  ['dockerd', 'docker.io'],
  ['docker', 'docker.io'],
  ['mmdebstrap', 'mmdebstrap'],
];

const SEARCH_DIRS = ['/usr/bin', '/usr/sbin', '/usr/local/bin', '/usr/local/sbin', '/bin', '/sbin'];

function has(program) {
  if (SEARCH_DIRS.some((d) => existsSync(`${d}/${program}`))) return true;
  return spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status === 0;
}

const missing = [...new Set(REQUIRED.filter(([prog]) => !has(prog)).map(([, pkg]) => pkg))];
if (missing.length === 0) process.exit(0);

const command = `apt-get update && apt-get install -y ${missing.join(' ')}`;
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (!isRoot) {
  console.error(`The test suite needs Debian packages that are not installed: ${missing.join(', ')}.\nRun as root:\n  ${command}`);
  process.exit(1);
}
console.log(`installing test dependencies: ${missing.join(' ')}`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
try {
  execFileSync('apt-get', ['update'], { stdio: 'inherit', env, timeout: 300_000 });
  execFileSync('apt-get', ['install', '-y', ...missing], { stdio: 'inherit', env, timeout: 900_000 });
} catch (err) {
  console.error(`installing failed (${err.message}); run:\n  ${command}`);
  process.exit(1);
}
const still = REQUIRED.filter(([prog]) => !has(prog)).map(([prog]) => prog);
if (still.length) {
  console.error(`still missing after install: ${still.join(', ')}`);
  process.exit(1);
}

// A private Docker for the compose tests: our own dockerd (its socket, data and exec roots in
// a temp dir, so stopping it and removing the dir removes every container, network and image
// it made), and local stand-ins for the images the compose files name, since Docker Hub is
// out of reach: one Debian rootfs from mmdebstrap with this machine's Node 20 and npm,
// redis-server and nginx-light, imported once and tagged per image with its own command.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until } from './wait.js';

export interface PrivateDocker {
  env: NodeJS.ProcessEnv;
  /** runs docker or docker-compose against this daemon; throws with the output on failure */
  run(cmd: 'docker' | 'docker-compose', args: string[], timeoutMs?: number, cwd?: string): string;
  stop(): Promise<void>;
}

const MIRROR = 'http://deb.debian.org/debian';
/** Where the system CA bundle goes in the stand-ins (npm in `docker build` needs it). */
const CA_IN_IMAGE = '/usr/local/share/chorus-host-ca.crt';

/** Why the compose tests cannot run here, or null. */
export function dockerSkipReason(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (dockerd, mmdebstrap)';
  for (const tool of ['dockerd', 'docker', 'docker-compose', 'mmdebstrap']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  return null;
}

/** The network interfaces Docker names br-<network id>. */
function bridgeLinks(): string[] {
  const out = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8', timeout: 5000 }).stdout ?? '';
  return [...out.matchAll(/^\d+: (br-[0-9a-f]{12})[:@]/gm)].map((m) => m[1]);
}

export async function startPrivateDocker(): Promise<PrivateDocker> {
  const dir = mkdtempSync(join(tmpdir(), 'chorus-docker-'));
  const bridgesBefore = new Set(bridgeLinks());
  const socket = join(dir, 'docker.sock');
  const daemon: ChildProcess = spawn(
    'dockerd',
    [
      '--host',
      `unix://${socket}`,
      '--data-root',
      join(dir, 'root'),
      '--exec-root',
      join(dir, 'exec'),
      '--pidfile',
      join(dir, 'docker.pid'),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  daemon.stderr?.on('data', (c) => (log = (log + String(c)).slice(-4000)));
  const exited = new Promise((r) => daemon.once('exit', r));
  const env = { ...process.env, DOCKER_HOST: `unix://${socket}`, COMPOSE_INTERACTIVE_NO_CLI: '1' };
  const run: PrivateDocker['run'] = (cmd, args, timeoutMs = 120_000, cwd) => {
    const r = spawnSync(cmd, args, { env, cwd, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
    if (r.status !== 0)
      throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${(r.stderr || r.stdout || '').slice(-3000)}`);
    return r.stdout;
  };
  const stop = async () => {
    if (daemon.exitCode === null && daemon.signalCode === null) {
      daemon.kill('SIGTERM');
      const timer = setTimeout(() => daemon.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    // overlay mounts of containers that were still running go with the daemon; then the files
    spawnSync('sh', ['-c', `grep -o ' ${dir}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l`]);
    rmSync(dir, { recursive: true, force: true });
    // A compose network's bridge can outlive the daemon: the ones that were not there before go.
    for (const link of bridgeLinks()) if (!bridgesBefore.has(link)) spawnSync('ip', ['link', 'delete', link], { stdio: 'ignore' });
  };
  try {
    await until(() => spawnSync('docker', ['info'], { env, timeout: 5000 }).status === 0, 30_000, 'dockerd answers', 250);
  } catch {
    await stop();
    throw new Error(`dockerd did not start: ${log}`);
  }
  return { env, run, stop };
}

/** Builds the stand-in images; rejects with the reason when the Debian mirror is out of reach. */
export function buildStandIns(docker: PrivateDocker): void {
  const dir = mkdtempSync(join(tmpdir(), 'chorus-rootfs-'));
  const root = join(dir, 'rootfs');
  try {
    const boot = spawnSync(
      'mmdebstrap',
      // essential (no apt: nothing in the images installs packages) is ~7 s quicker than minbase;
      // libstdc++6 is what the host's node binary needs beyond it.
      ['--variant=essential', '--include=ca-certificates,libstdc++6,redis-server,nginx-light', 'bookworm', root, MIRROR],
      { encoding: 'utf8', timeout: 300_000 },
    );
    if (boot.status !== 0)
      throw new Error(`mmdebstrap failed (${boot.status ?? boot.signal}): ${(boot.stderr || boot.stdout).slice(-1500)}`);
    // This machine's Node 20 and npm, as node:20-bookworm-slim has them.
    copyFileSync(process.execPath, join(root, 'usr/local/bin/node'));
    chmodSync(join(root, 'usr/local/bin/node'), 0o755);
    const npmDir = '/usr/lib/node_modules/npm';
    if (existsSync(npmDir)) {
      mkdirSync(join(root, 'usr/local/lib/node_modules'), { recursive: true });
      cpSync(npmDir, join(root, 'usr/local/lib/node_modules/npm'), { recursive: true });
      symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(root, 'usr/local/bin/npm'));
      symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', join(root, 'usr/local/bin/npx'));
    }
    copyFileSync('/etc/ssl/certs/ca-certificates.crt', join(root, CA_IN_IMAGE.slice(1)));
    // The `node` user (uid 1000) the Dockerfile switches to.
    writeFileSync(join(root, 'etc/passwd'), readFileSync(join(root, 'etc/passwd'), 'utf8') + 'node:x:1000:1000::/home/node:/bin/sh\n');
    writeFileSync(join(root, 'etc/group'), readFileSync(join(root, 'etc/group'), 'utf8') + 'node:x:1000:\n');
    mkdirSync(join(root, 'home/node'), { recursive: true });
    spawnSync('chown', ['1000:1000', join(root, 'home/node')]);
    // The official redis image turns protected mode off when no password is set; Debian's does not.
    const entry = join(root, 'usr/local/bin/docker-entrypoint.sh');
    writeFileSync(entry, '#!/bin/sh\nif [ "$1" = redis-server ]; then shift; exec redis-server --protected-mode no "$@"; fi\nexec "$@"\n');
    chmodSync(entry, 0o755);
    const tar = join(dir, 'rootfs.tar');
    const packed = spawnSync('tar', ['-C', root, '-cf', tar, '.'], { timeout: 120_000 });
    if (packed.status !== 0) throw new Error('tar of the rootfs failed');
    docker.run('docker', ['import', '--change', `ENV NODE_EXTRA_CA_CERTS=${CA_IN_IMAGE}`, tar, 'chorus-standin:base'], 180_000);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const images: Array<[string, string]> = [
    ['node:20-bookworm-slim', 'CMD ["node"]'],
    ['redis:7-alpine', 'ENTRYPOINT ["docker-entrypoint.sh"]\nCMD ["redis-server"]'],
    ['nginx:1.27-alpine', 'CMD ["nginx", "-g", "daemon off;"]'],
  ];
  const ctx = mkdtempSync(join(tmpdir(), 'chorus-standin-'));
  try {
    for (const [tag, tail] of images) {
      writeFileSync(join(ctx, 'Dockerfile'), `FROM chorus-standin:base\n${tail}\n`);
      docker.run('docker', ['build', '-q', '-t', tag, ctx], 120_000);
    }
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
}

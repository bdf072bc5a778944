// Starts a real Chorus node (dist/cli.js) as a child process on ephemeral ports
// and stops it by pid. Every test talks to nodes started this way.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
export const ROOT = resolve(new URL('../../..', import.meta.url).pathname);
export const CLI = join(ROOT, 'dist/cli.js');
export const DEMO_APP = {
    id: 'app-id',
    key: 'app-key',
    secret: 'app-secret',
    enable_client_messages: true,
};
export function writeConfig(config) {
    const dir = mkdtempSync(join(tmpdir(), 'chorus-test-'));
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify(config, null, 2));
    return file;
}
/** Starts a node; apps default to the demo app. */
export async function startNode(options = {}) {
    const config = {
        port: 0,
        host: '127.0.0.1',
        metrics: { port: 0, host: '127.0.0.1' },
        app_manager: { array: { apps: [DEMO_APP] } },
        ...options.config,
    };
    const file = writeConfig(config);
    const proc = spawn(process.execPath, [...(options.nodeArgs ?? []), CLI, 'start', '--config', file], {
        cwd: ROOT,
        env: { ...process.env, LOG_LEVEL: process.env.CHORUS_TEST_LOG_LEVEL ?? 'info', ...options.env },
        stdio: ['ignore', 'pipe', 'pipe'],
    });
    const logs = [];
    const exited = new Promise((res) => proc.once('exit', (code) => res(code)));
    const ready = new Promise((res, rej) => {
        const timer = setTimeout(() => rej(new Error(`node did not start in time:\n${logs.join('\n')}`)), options.timeoutMs ?? 10_000);
        const onLine = (line) => {
            logs.push(line);
            if (!line.includes('chorus listening'))
                return;
            try {
                const entry = JSON.parse(line);
                clearTimeout(timer);
                res({ port: entry.port, metricsPort: entry.metrics_port, nodeId: entry.node_id });
            }
            catch {
                /* not JSON */
            }
        };
        let buffer = { out: '', err: '' };
        const feed = (which) => (chunk) => {
            buffer[which] += chunk.toString();
            let i;
            while ((i = buffer[which].indexOf('\n')) >= 0) {
                onLine(buffer[which].slice(0, i));
                buffer[which] = buffer[which].slice(i + 1);
            }
        };
        proc.stdout.on('data', feed('out'));
        proc.stderr.on('data', feed('err'));
        exited.then((code) => {
            clearTimeout(timer);
            rej(new Error(`node exited with ${code} before listening:\n${logs.join('\n')}`));
        });
    });
    const { port, metricsPort, nodeId } = await ready;
    const stop = async (signal = 'SIGTERM') => {
        if (proc.exitCode === null && proc.signalCode === null)
            proc.kill(signal);
        const timeout = new Promise((r) => setTimeout(() => r(null), 15_000).unref());
        const code = await Promise.race([exited, timeout]);
        if (proc.exitCode === null && proc.signalCode === null)
            proc.kill('SIGKILL');
        return code;
    };
    return {
        proc,
        port,
        metricsPort,
        nodeId,
        logs,
        url: `http://127.0.0.1:${port}`,
        stop,
        kill: async () => {
            proc.kill('SIGKILL');
            await exited;
        },
        exited,
    };
}
/** Runs the CLI to completion (for --help, --version, bad configs). */
export function runCli(args, env = {}, timeoutMs = 10_000) {
    return new Promise((res) => {
        const proc = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        proc.stdout.on('data', (c) => (stdout += c));
        proc.stderr.on('data', (c) => (stderr += c));
        const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
        proc.on('exit', (code) => {
            clearTimeout(timer);
            res({ code, stdout, stderr });
        });
    });
}

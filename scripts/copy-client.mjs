#!/usr/bin/env node
// Copies the browser test client (client/) and the pusher-js browser build it uses
// into dist/client, where src/http/dev-client.ts serves them from. No CDN at run time.
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist/client');
const pusherDir = join(root, 'node_modules/pusher-js/dist/web');
// The build with tweetnacl, so private-encrypted- channels work in the page.
const pusherFiles = ['pusher-with-encryption.min.js', 'pusher-with-encryption.min.js.LICENSE.txt'];

if (!existsSync(join(pusherDir, pusherFiles[0]))) {
  console.error(`copy-client: ${join(pusherDir, pusherFiles[0])} is missing; run npm install (pusher-js is a devDependency)`);
  process.exit(1);
}
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
for (const name of readdirSync(join(root, 'client'))) copyFileSync(join(root, 'client', name), join(out, name));
for (const name of pusherFiles) {
  if (existsSync(join(pusherDir, name))) copyFileSync(join(pusherDir, name), join(out, name));
}

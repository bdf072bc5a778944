// A box of three workers passes the single-node behaviour suites (issue 16: "N workers pass
// the same behaviour suites as one node"). CHORUS_TEST_WORKERS makes test/helpers/node.ts start
// every node as a box of that many workers; each suite is imported inside its own describe, so
// its tests (and its file-wide before/after hooks: one box per suite) run here, on the box.
// Covered: fan-out, presence, cache channels, subscription counts, socket exclusion, client
// events, sign-in, server-to-user, watchlists, terminate_connections, the HTTP API's events,
// batches and queries. Left out for time (npm test stays under 15 min): ws-connection (28 s on a
// box: handshakes, refusals, liveness and malformed frames, each handled by the one worker that
// holds the socket; it passes on a box) and webhooks (workers.test.ts checks them exactly once
// on a box).
import { describe } from 'node:test';

process.env.CHORUS_TEST_WORKERS = '3';

const SUITES = ['./ws-channels.test.js', './ws-client-events.test.js', './ws-user.test.js', './http-api.test.js'];

for (const suite of SUITES) {
  await describe(`box of 3 workers: ${suite.slice(2, -'.test.js'.length)}`, async () => {
    await import(suite);
  });
}

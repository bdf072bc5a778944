import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startNode } from './helpers/node.js';
import { connected, pusherClient, serverSdk, waitFor } from './helpers/clients.js';
describe('smoke: one node, pusher-js and the pusher SDK', () => {
    let node;
    let client;
    before(async () => {
        node = await startNode();
        client = pusherClient(node);
    });
    after(async () => {
        client?.disconnect();
        await node?.stop();
    });
    it('delivers an event published through the HTTP API to a subscriber', async () => {
        const socketId = await connected(client);
        assert.match(socketId, /^\d+\.\d+$/);
        const channel = client.subscribe('smoke');
        await waitFor(channel, 'pusher:subscription_succeeded');
        const got = waitFor(channel, 'greeting');
        const res = await serverSdk(node).trigger('smoke', 'greeting', { n: 1 });
        assert.equal(res.status, 200);
        assert.deepEqual(await got, { n: 1 });
    });
});

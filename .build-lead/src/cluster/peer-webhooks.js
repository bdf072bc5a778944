import { wantsWebhook } from '../webhooks/events.js';
/** How long a claim on a dead peer holds (node ids are unique per boot, so it never needs reuse). */
const CLAIM_TTL_MS = 10 * 60 * 1000;
export class PeerWebhooks {
    adapter;
    apps;
    webhooks;
    log;
    recoverQueue;
    /** dead peers whose cleanup this node won */
    won = new Set();
    /** per peer, the last cleanup or restore: a return waits for the loss to be handled first */
    chains = new Map();
    chain(nodeId, step) {
        const next = (this.chains.get(nodeId) ?? Promise.resolve()).then(step);
        const settled = next.catch(() => undefined).finally(() => {
            if (this.chains.get(nodeId) === settled)
                this.chains.delete(nodeId);
        });
        this.chains.set(nodeId, settled);
        return next;
    }
    constructor(adapter, apps, webhooks, log, 
    /** requeues the webhooks the lost node was delivering (Redis queue) */
    recoverQueue = async () => undefined) {
        this.adapter = adapter;
        this.apps = apps;
        this.webhooks = webhooks;
        this.log = log;
        this.recoverQueue = recoverQueue;
    }
    lost(peer, reason, removed, channels) {
        // A graceful leaver closed its own sockets first and sent its own webhooks.
        if (reason === 'left')
            return;
        this.chain(peer.nodeId, () => this.cleanUp(peer, removed, channels)).catch((err) => this.log.error({ peer: peer.nodeId, err: err.message }, 'cleanup after lost peer failed'));
    }
    async cleanUp(peer, removed, channels) {
        if (!(await this.adapter.claim(`dead:${peer.nodeId}`, CLAIM_TTL_MS)))
            return;
        this.won.add(peer.nodeId);
        await this.recoverQueue(peer.nodeId);
        this.log.info({ peer: peer.nodeId, members: removed.length, channels: channels.length }, 'cleaning up after lost peer');
        for (const ref of removed) {
            const app = await this.app(ref.appId);
            if (app && wantsWebhook(app, 'member_removed')) {
                this.webhooks.emit(app, { name: 'member_removed', channel: ref.channel, user_id: ref.userId });
            }
        }
        for (const entry of channels) {
            const [appId, channel] = entry.split('\n', 2);
            if (!(await this.adapter.removeOccupant(appId, channel, peer.nodeId)))
                continue;
            const app = await this.app(appId);
            if (app && wantsWebhook(app, 'channel_vacated'))
                this.webhooks.emit(app, { name: 'channel_vacated', channel });
        }
    }
    revived(peer, added, channels) {
        this.chain(peer.nodeId, () => this.restore(peer, added, channels)).catch((err) => this.log.error({ peer: peer.nodeId, err: err.message }, 'restoring a returned peer failed'));
    }
    async restore(peer, added, channels) {
        this.log.warn({ peer: peer.nodeId, members: added.length }, 'peer declared dead is back');
        if (this.won.delete(peer.nodeId)) {
            for (const ref of added) {
                const app = await this.app(ref.appId);
                if (app && wantsWebhook(app, 'member_added')) {
                    this.webhooks.emit(app, { name: 'member_added', channel: ref.channel, user_id: ref.userId });
                }
            }
        }
        for (const entry of channels) {
            const [appId, channel] = entry.split('\n', 2);
            if (!(await this.adapter.restoreOccupant(appId, channel, peer.nodeId)))
                continue;
            const app = await this.app(appId);
            if (app && wantsWebhook(app, 'channel_occupied'))
                this.webhooks.emit(app, { name: 'channel_occupied', channel });
        }
    }
    async app(appId) {
        try {
            return await this.apps.findById(appId);
        }
        catch {
            return null;
        }
    }
}

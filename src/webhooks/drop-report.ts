// A webhook batch the queue could not take is counted every time and logged at
// most once a minute per app and reason, with how many went unlogged since:
// an app flooding a full queue must not flood the log as well.
import type { Logger } from 'pino';
import type { WebhookJob } from './job.js';
import { redactUrl } from './redact.js';

export type DropReason = 'app_full' | 'queue_full' | 'queue_unavailable';

const MESSAGES: Record<DropReason, string> = {
  app_full: 'webhook queue full for this app, its newest batch dropped',
  queue_full: 'webhook queue full, batch dropped',
  queue_unavailable: 'webhook could not be queued, batch dropped',
};

const LOG_EVERY_MS = 60_000;
/** Entries kept for the once-a-minute rule; past this the old ones are forgotten. */
const MAX_TRACKED = 10_000;

export class DropReport {
  private readonly last = new Map<string, { at: number; unlogged: number }>();

  constructor(
    private readonly counter: { dropped(appId: string): void },
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  dropped(job: WebhookJob, reason: DropReason, detail?: string): void {
    this.counter.dropped(job.appId);
    const key = `${job.appId}\n${reason}`;
    const seen = this.last.get(key);
    const now = this.now();
    if (seen && now - seen.at < LOG_EVERY_MS) {
      seen.unlogged++;
      return;
    }
    if (this.last.size >= MAX_TRACKED) this.forgetOlderThan(now - LOG_EVERY_MS);
    this.last.set(key, { at: now, unlogged: 0 });
    this.log.error(
      {
        app_id: job.appId,
        url: redactUrl(job.url),
        reason,
        events: job.events.length,
        dropped_unlogged: seen?.unlogged ?? 0,
        ...(detail ? { err: detail } : {}),
      },
      MESSAGES[reason],
    );
  }

  private forgetOlderThan(cutoff: number): void {
    for (const [key, seen] of this.last) if (seen.at < cutoff) this.last.delete(key);
    if (this.last.size >= MAX_TRACKED) this.last.clear();
  }
}

// Where a webhook job goes, as concurrency limits, breakers and logs see it.
import type { WebhookJob } from './job.js';
import { redactUrl } from './redact.js';

export interface Endpoint {
  appId: string;
  url: URL;
  /** scheme://host:port: sockets and concurrency are per origin */
  origin: string;
  /** app + origin + path: one app's failing endpoint never opens another app's breaker */
  key: string;
  /** origin + path, safe to log */
  label: string;
}

/** The job's endpoint, or null when its URL cannot be sent to (not http(s), credentials, unparseable). */
export function endpointOf(job: Pick<WebhookJob, 'appId' | 'url'>): Endpoint | null {
  let url: URL;
  try {
    url = new URL(job.url);
  } catch {
    return null;
  }
  // The config refuses these; a job queued in Redis by an older version could still hold one.
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password) return null;
  const label = redactUrl(job.url);
  return { appId: job.appId, url, origin: url.origin, key: `${job.appId}\n${label}`, label };
}

// Which of an app's webhooks an event goes to.
import type { WebhookConfig } from '../config/schema.js';
import type { WebhookEvent } from './events.js';

/** Does the event pass the webhook's type list and channel filter? */
export function webhookMatches(hook: WebhookConfig, event: WebhookEvent): boolean {
  if (!(hook.event_types as readonly string[]).includes(event.name)) return false;
  const f = hook.filter;
  if (!f) return true;
  if (f.channel_prefix && !event.channel.startsWith(f.channel_prefix)) return false;
  if (f.channel_suffix && !event.channel.endsWith(f.channel_suffix)) return false;
  if (f.channel_pattern) {
    try {
      if (!new RegExp(f.channel_pattern).test(event.channel)) return false;
    } catch {
      return false;
    }
  }
  return true;
}

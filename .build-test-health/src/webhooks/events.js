/** True when any of the app's webhooks wants this event type. */
export const wantsWebhook = (app, name) => app.webhooks.length > 0 && app.webhooks.some((w) => w.event_types.includes(name));

// Webhook URLs as logs may show them. A query string often carries a token and
// userinfo a password, so only the origin and the path are ever logged.

/** `https://host:port/path` of a webhook URL: no userinfo, no query string, no fragment. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '[invalid url]';
  }
}

/** A failure reason with the URL's secret parts cut out, in case an error message echoes the URL. */
export function scrubReason(reason: string, url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return reason.split(url).join('[invalid url]');
  }
  let out = reason.split(url).join(redactUrl(url)).split(u.href).join(redactUrl(url));
  const parts = [u.search, u.search.slice(1), ...u.searchParams.values(), u.password, u.username];
  const secrets = [...parts, ...parts.map(safeDecode)].sort((x, y) => y.length - x.length);
  for (const secret of secrets) {
    // Very short parts would cut innocent text; they are no real secret anyway.
    if (secret.length >= 3) out = out.split(secret).join('[redacted]');
  }
  return out;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

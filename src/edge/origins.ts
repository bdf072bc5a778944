// Origin matching for allowed_origins (WebSocket) and cors.origin (HTTP API), as Sockudo documents it: "*" allows all; an entry
// with a scheme matches exactly; without one it matches http and https;
// "*.example.com" matches subdomains (not the bare domain).

function hostPart(origin: string): string {
  const i = origin.indexOf('://');
  return i === -1 ? origin : origin.slice(i + 3);
}

function matchOne(pattern: string, origin: string): boolean {
  if (pattern === '*' || pattern.toLowerCase() === 'any') return true;
  const p = pattern.toLowerCase().replace(/\/+$/, '');
  const o = origin.toLowerCase().replace(/\/+$/, '');
  const hasScheme = p.includes('://');
  const subject = hasScheme ? o : hostPart(o);
  if (!p.includes('*')) return subject === p;
  const escaped = p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]+');
  return new RegExp(`^${escaped}$`).test(subject);
}

/** An empty list allows every origin; otherwise the Origin header must match an entry. */
export function originAllowed(allowed: readonly string[], origin: string): boolean {
  if (allowed.length === 0) return true;
  if (allowed.includes('*')) return true;
  if (!origin) return false;
  return allowed.some((pattern) => matchOne(pattern, origin));
}

/** True when the origin matches an entry; an empty list (or no Origin header) matches nothing. */
export function originListed(patterns: readonly string[], origin: string): boolean {
  return origin !== '' && patterns.some((pattern) => matchOne(pattern, origin));
}

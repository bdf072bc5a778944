// Injective topic names: each part is escaped so that no part can contain the
// separator, then the parts are joined. Escapes are "%XX" per UTF-8 byte; "%" itself is
// always escaped, so a decoder could split on the separator and undo every part, which
// is what makes two different part lists unable to produce one topic.
//
// Two corner cases need their own marks: an empty part becomes a lone "%" (never the
// start of an escape, and a bare empty token is not even a valid NATS subject), and a
// lone UTF-16 surrogate becomes "%uXXXX" (the broker clients encode strings as UTF-8,
// which would turn every lone surrogate into the same U+FFFD and collide).

const LONE_SURROGATE = '[\\ud800-\\udbff](?![\\udc00-\\udfff])|(?<![\\ud800-\\udbff])[\\udc00-\\udfff]';

function escapeChar(c: string): string {
  const unit = c.charCodeAt(0);
  if (c.length === 1 && unit >= 0xd800 && unit <= 0xdfff) return `%u${unit.toString(16).toUpperCase()}`;
  let out = '';
  for (const byte of Buffer.from(c, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/** An escaper for one broker's names; `special` (a character class, no flags) must include "%" and the separator. */
export function partEscaper(special: string): (part: string) => string {
  const pattern = new RegExp(`${LONE_SURROGATE}|${special}`, 'g');
  return (part) => (part === '' ? '%' : part.replace(pattern, escapeChar));
}

/** Joins escaped parts; at least one part, since a topic of no parts names nothing. */
export function joinParts(parts: readonly string[], separator: string, escape: (part: string) => string): string {
  if (parts.length === 0) throw new RangeError('a topic needs at least one part');
  return parts.map(escape).join(separator);
}

// Channel name rules and types (PROTOCOL.md sections 6 and 7).

export type ChannelKind = 'public' | 'private' | 'encrypted' | 'presence' | 'user';

export interface ChannelInfo {
  readonly kind: ChannelKind;
  /** Cache channels keep their last event for new subscribers. */
  readonly cache: boolean;
}

const NAME = /^[-a-zA-Z0-9_=@,.;]+$/;
export const SERVER_TO_USER_PREFIX = '#server-to-user-';

const info = (kind: ChannelKind, cache: boolean): ChannelInfo => Object.freeze({ kind, cache });
const PUBLIC = info('public', false);
const PUBLIC_CACHE = info('public', true);
const PRIVATE = info('private', false);
const PRIVATE_CACHE = info('private', true);
const ENCRYPTED = info('encrypted', false);
const ENCRYPTED_CACHE = info('encrypted', true);
const PRESENCE = info('presence', false);
const PRESENCE_CACHE = info('presence', true);
const USER = info('user', false);

/** Classifies a syntactically valid channel name (one shared answer per class: it runs on every subscribe). */
export function channelInfo(name: string): ChannelInfo {
  if (name.startsWith('private-encrypted-')) return name.startsWith('private-encrypted-cache-') ? ENCRYPTED_CACHE : ENCRYPTED;
  if (name.startsWith('private-')) return name.startsWith('private-cache-') ? PRIVATE_CACHE : PRIVATE;
  if (name.startsWith('presence-')) return name.startsWith('presence-cache-') ? PRESENCE_CACHE : PRESENCE;
  if (name.startsWith(SERVER_TO_USER_PREFIX)) return USER;
  return name.startsWith('cache-') ? PUBLIC_CACHE : PUBLIC;
}

/** Returns why a channel name is not acceptable, or null when it is. */
export function channelNameProblem(name: unknown, maxLength: number | null): string | null {
  if (typeof name !== 'string' || name.length === 0) return 'channel name must be a non-empty string';
  if (maxLength !== null && name.length > maxLength) {
    return `channel name is longer than ${maxLength} characters`;
  }
  if (name.startsWith(SERVER_TO_USER_PREFIX)) {
    return NAME.test(name.slice(SERVER_TO_USER_PREFIX.length)) ? null : 'invalid characters in channel name';
  }
  return NAME.test(name) ? null : 'channel name may contain only letters, digits and _ - = @ , . ;';
}

export const needsAuth = (kind: ChannelKind): boolean => kind === 'private' || kind === 'encrypted' || kind === 'presence';

/** Client events go only to private and presence channels (not encrypted ones). */
export const allowsClientEvents = (kind: ChannelKind): boolean => kind === 'private' || kind === 'presence';

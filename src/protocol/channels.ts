// Channel name rules and types (PROTOCOL.md sections 6 and 7).

export type ChannelKind = 'public' | 'private' | 'encrypted' | 'presence' | 'user';

export interface ChannelInfo {
  kind: ChannelKind;
  /** Cache channels keep their last event for new subscribers. */
  cache: boolean;
}

const NAME = /^[-a-zA-Z0-9_=@,.;]+$/;
export const SERVER_TO_USER_PREFIX = '#server-to-user-';

/** Classifies a syntactically valid channel name. */
export function channelInfo(name: string): ChannelInfo {
  if (name.startsWith('private-encrypted-')) {
    return { kind: 'encrypted', cache: name.startsWith('private-encrypted-cache-') };
  }
  if (name.startsWith('private-')) return { kind: 'private', cache: name.startsWith('private-cache-') };
  if (name.startsWith('presence-')) return { kind: 'presence', cache: name.startsWith('presence-cache-') };
  if (name.startsWith(SERVER_TO_USER_PREFIX)) return { kind: 'user', cache: false };
  return { kind: 'public', cache: name.startsWith('cache-') };
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

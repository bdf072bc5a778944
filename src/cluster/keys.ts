// Broker keys from parts: every part is percent-encoded before the parts are
// joined, so no app id, channel or user id can make two keys collide, and no part
// can smuggle in a Redis Cluster hash tag.
export const brokerKey = (prefix: string, ...parts: string[]): string => prefix + parts.map(encodeURIComponent).join(':');

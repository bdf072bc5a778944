// pusher:signin (user authentication): the signature and user data are checked
// here; the core binds the user and reports watchlists.
import type { Connection } from '../../conn/connection.js';
import { CloseCode } from '../../protocol/codes.js';
import { dataAsObject, errorFrame } from '../../protocol/frames.js';
import { MAX_USER_ID_LENGTH, MAX_WATCHLIST } from '../../protocol/limits.js';
import { userStringToSign, verifyClientAuth } from '../../protocol/signatures.js';
import type { WsDeps } from './settings.js';

const fail = (conn: Connection, message: string) => conn.send(errorFrame(CloseCode.UNAUTHORIZED, message));

function encodable(value: unknown): boolean {
  try {
    JSON.stringify(value);
    return true;
  } catch {
    return false;
  }
}

export function handleSignin(d: WsDeps, conn: Connection, rawData: unknown): void {
  const app = conn.app;
  const data = dataAsObject(rawData);
  const userData = data?.user_data;
  if (!data || typeof userData !== 'string') return fail(conn, 'pusher:signin needs user_data as a JSON string');
  if (!verifyClientAuth(data.auth, app.key, app.secret, userStringToSign(conn.socketId, userData))) {
    return fail(conn, 'Invalid signature for user sign-in');
  }
  let user: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(userData);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    user = parsed as Record<string, unknown>;
  } catch {
    return fail(conn, 'user_data must be a JSON object');
  }
  const id = user.id;
  if (typeof id !== 'string' || id.length === 0) return fail(conn, 'user_data.id must be a non-empty string');
  if (id.length > MAX_USER_ID_LENGTH) return fail(conn, `user id is longer than ${MAX_USER_ID_LENGTH} characters`);
  if (conn.user && conn.user.id !== id) return fail(conn, 'This connection is already signed in as another user');
  // user_info is re-encoded into presence frames; too deep for JSON.stringify, it would break
  // every later subscribe to a presence channel this user joins.
  if (!encodable(user.user_info)) return fail(conn, 'user_data.user_info is nested too deeply');
  const listed = Array.isArray(user.watchlist) ? user.watchlist.filter((w): w is string => typeof w === 'string') : [];
  const overflow = listed.length > MAX_WATCHLIST;
  const watchlist = overflow ? listed.slice(0, MAX_WATCHLIST) : listed;
  d.core.signIn(conn, { id, userData, info: user.user_info ?? null, watchlist }, overflow);
}

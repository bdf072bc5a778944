// The client add-on of docs/RECOVERY.md for an unmodified pusher-js 8 instance (Node and
// browser builds): opts every connection in to channel history, unwraps the numbered
// events the server then sends into the events pusher-js would have delivered, drops the
// ones already delivered, and tells the app whether a resume was gap-free.
//
// Dependency-free and self-contained on purpose: scripts/copy-client.mjs turns the compiled
// file into a classic browser script (window.ChorusRecovery) by stripping `export`. Nothing
// here may import anything, and nothing may use timers or other host globals.
//
// It only binds events and calls instance methods of pusher-js (no prototype is patched):
// - pusher.connection 'state_change' runs before pusher-js's own 'connected' listener
//   resubscribes the channels (ConnectionManager.updateState emits 'state_change', then the
//   new state), so the opt-in sent there precedes every pusher:subscribe of that connection;
// - pusher.connection 'message' sees every decoded frame after pusher-js has routed it;
//   pusher-js drops the unknown pusher_internal:chorus_* frames, this re-delivers the
//   wrapped ones the way Pusher's own 'message' listener delivers a plain frame.

/**
 * A channel position: a serial means nothing under another epoch. The epoch is null (with
 * serial 0) while the channel has no history yet; such a position is offered on reconnect too,
 * so the events published meanwhile are replayed.
 */
export interface RecoveryPosition {
  serial: number;
  epoch: string | null;
}

/** The frame pusher-js hands to Channel.handleEvent (its PusherEvent). */
export interface RecoveryPusherEvent {
  event: string;
  channel?: string;
  data?: unknown;
  user_id?: string;
}

/** What the add-on uses of a pusher-js Channel (public, private, presence, encrypted). */
export interface RecoveryChannel {
  name: string;
  handleEvent(event: RecoveryPusherEvent): void;
  emit(eventName: string, data?: unknown): unknown;
}

/** What the add-on uses of a pusher-js instance; a `new Pusher(...)` of pusher-js 8 is one. */
export interface RecoveryPusher {
  connection: {
    state: string;
    socket_id: string;
    bind(eventName: string, callback: (data: unknown) => void): unknown;
    unbind(eventName?: string, callback?: (data: unknown) => void): unknown;
  };
  send_event(eventName: string, data: unknown, channel?: string): boolean;
  channel(name: string): RecoveryChannel | null | undefined;
  allChannels(): RecoveryChannel[];
  global_emitter: { emit(eventName: string, data?: unknown): unknown };
  user?: { serverToUserChannel?: RecoveryChannel | null } | null;
}

export interface RecoveryOptions {
  /**
   * Positions to resume from on the first connection, e.g. a previous page's
   * `handle.positions()` kept in sessionStorage. Used for channels subscribed by then.
   */
  positions?: Record<string, RecoveryPosition>;
  /** Socket ids of earlier connections (newest first), e.g. kept with `positions`. */
  previousSocketIds?: string[];
  /** Told about frames the add-on could not use and opt-ins the server refused. */
  onDebug?: (message: string, detail?: unknown) => void;
}

export interface RecoveryHandle {
  /** The last position received per channel (a copy). */
  positions(): Record<string, RecoveryPosition>;
  /**
   * Unbinds the add-on; numbered events are no longer unwrapped after this. The wire has no
   * opt-out: until pusher-js reconnects, the history channels' events of the current
   * connection arrive wrapped and pusher-js drops them.
   */
  disable(): void;
}

/** `chorus:recovered` on a channel after a resume. */
export interface RecoveredEvent extends RecoveryPosition {
  replayed: number;
}

/** `chorus:recovery_failed` on a channel: events were missed, refetch. */
export interface RecoveryFailedEvent extends RecoveryPosition {
  reason: string;
}

/** RECOVERY.md: at most 100 positions and 8 previous socket ids per opt-in. */
const MAX_POSITIONS = 100;
const MAX_SOCKET_IDS = 8;
/**
 * What the server accepts back in an opt-in (one bad value makes it refuse the whole opt-in):
 * epochs of letters, digits, - and _ (at most 64), Pusher socket ids.
 */
const EPOCH = /^[A-Za-z0-9_-]{1,64}$/;
const SOCKET_ID = /^\d{1,30}\.\d{1,30}$/;

interface Entry extends RecoveryPosition {
  /** the pusher-js Channel object the position was received on (null: seeded, adopt the first) */
  ref: RecoveryChannel | null;
}

type Fields = Record<string, unknown>;

const handles = new WeakMap<object, RecoveryHandle>();

const isObject = (v: unknown): v is Fields => typeof v === 'object' && v !== null && !Array.isArray(v);

function positionOf(v: unknown): RecoveryPosition | null {
  if (!isObject(v)) return null;
  const { serial, epoch } = v;
  if (typeof serial !== 'number' || !Number.isSafeInteger(serial) || serial < 0) return null;
  if (epoch === null) return { serial, epoch: null };
  if (typeof epoch !== 'string' || !EPOCH.test(epoch)) return null;
  return { serial, epoch };
}

/** pusher-js's Protocol.decodeMessage on `data`: a string that parses as JSON becomes the value. */
function decodeData(data: unknown): unknown {
  if (typeof data !== 'string') return data;
  try {
    return JSON.parse(data) as unknown;
  } catch {
    return data;
  }
}

/**
 * Enables history recovery on a pusher-js 8 instance. Call it right after `new Pusher(...)`
 * (before the socket opens, which is always later in the same tick), so that the first
 * connection opts in before it subscribes. Calling it again on the same instance returns
 * the handle it already has.
 */
export function enableRecovery(pusher: RecoveryPusher, options: RecoveryOptions = {}): RecoveryHandle {
  const existing = handles.get(pusher);
  if (existing) return existing;

  const debug = (message: string, detail?: unknown): void => {
    try {
      options.onDebug?.(message, detail);
    } catch {
      // a throwing debug hook must not break the connection
    }
  };

  /** Insertion order is update order: the newest last, so the opt-in keeps the newest 100. */
  const entries = new Map<string, Entry>();
  let previousSocketIds: string[] = [];
  /** Per connection: the channels a position was sent for and not yet answered. */
  let pending = new Set<string>();
  /** Per connection: an opt-in was sent and no ack or refusal seen yet. */
  let awaitingAck = false;
  let passive = false;
  let disabled = false;

  for (const [name, pos] of Object.entries(options.positions ?? {})) {
    const p = positionOf(pos);
    if (p) entries.set(name, { ...p, ref: null });
  }
  for (const id of options.previousSocketIds ?? []) {
    if (typeof id === 'string' && SOCKET_ID.test(id) && !previousSocketIds.includes(id)) previousSocketIds.push(id);
  }
  previousSocketIds = previousSocketIds.slice(0, MAX_SOCKET_IDS);

  const store = (name: string, pos: RecoveryPosition, ref: RecoveryChannel): void => {
    const old = entries.get(name);
    // Within an epoch a position only moves forward: whatever was delivered stays delivered.
    const serial = old && old.ref === ref && old.epoch === pos.epoch ? Math.max(old.serial, pos.serial) : pos.serial;
    entries.delete(name);
    entries.set(name, { serial, epoch: pos.epoch, ref });
  };

  /** The entry of a channel still held by the app as the same Channel object, else none. */
  const current = (name: string, ref: RecoveryChannel): Entry | undefined => {
    const entry = entries.get(name);
    if (!entry) return undefined;
    if (entry.ref === null) entry.ref = ref;
    if (entry.ref === ref) return entry;
    // The app unsubscribed and subscribed again: a new subscription, the old position is moot.
    entries.delete(name);
    return undefined;
  };

  /** The app's channel of that name: pusher.channel() or the signed-in user's channel. */
  const channelNamed = (name: string): RecoveryChannel | undefined => {
    const ch = pusher.channel(name);
    if (ch) return ch;
    const userChannel = pusher.user?.serverToUserChannel;
    return userChannel && userChannel.name === name ? userChannel : undefined;
  };

  const optIn = (): void => {
    const socketId = pusher.connection.socket_id;
    pending = new Set();
    awaitingAck = false;
    passive = false;

    // Forget the channels the app no longer has (or has again, as a new Channel object).
    const live = new Map<string, RecoveryChannel>();
    for (const ch of pusher.allChannels()) live.set(ch.name, ch);
    for (const [name, entry] of [...entries]) {
      const ch = live.get(name);
      if (ch && (entry.ref === null || entry.ref === ch)) entry.ref = ch;
      else entries.delete(name);
    }

    const positions: Record<string, RecoveryPosition> = {};
    for (const [name, { serial, epoch }] of [...entries].slice(-MAX_POSITIONS)) {
      positions[name] = { serial, epoch };
      pending.add(name);
    }
    const previous = previousSocketIds.filter((id) => id !== socketId);
    const sent = pusher.send_event('chorus:recovery', { v: 1, previous_socket_ids: previous, positions });
    if (sent) awaitingAck = true;
    else {
      pending = new Set();
      debug('chorus:recovery could not be sent');
    }
    if (typeof socketId === 'string' && SOCKET_ID.test(socketId)) {
      previousSocketIds = [socketId, ...previous].slice(0, MAX_SOCKET_IDS);
    }
  };

  const onStateChange = (change: unknown): void => {
    if (disabled || !isObject(change) || change.current !== 'connected') return;
    // Dispatcher.emit has no try/catch: a throw here would keep pusher-js from resubscribing.
    try {
      optIn();
    } catch (err) {
      debug('chorus:recovery opt-in failed', err);
    }
  };

  const deliver = (name: string, frame: Fields): void => {
    if (typeof frame.event !== 'string' || frame.event === '') {
      debug('pusher_internal:chorus_event without a frame event', frame);
      return;
    }
    // Numbered events are app events only; a wrapped pusher_internal:* would reach
    // pusher-js's subscription bookkeeping, so it is never delivered.
    if (frame.event.indexOf('pusher_internal:') === 0) {
      debug('pusher_internal:chorus_event wrapping an internal event', frame);
      return;
    }
    const channel = typeof frame.channel === 'string' && frame.channel !== '' ? frame.channel : name;
    const event: RecoveryPusherEvent = { event: frame.event, channel, data: decodeData(frame.data) };
    if (typeof frame.user_id === 'string' && frame.user_id !== '') event.user_id = frame.user_id;
    // Pusher's 'message' listener, then UserFacade's (the #server-to-user- channel).
    const ch = pusher.channel(channel);
    if (ch) ch.handleEvent(event);
    const userChannel = pusher.user?.serverToUserChannel;
    if (userChannel && userChannel.name === channel && userChannel !== ch) userChannel.handleEvent(event);
    pusher.global_emitter.emit(event.event, event.data);
  };

  const onChorusEvent = (name: string, data: unknown): void => {
    if (!isObject(data) || !isObject(data.frame)) {
      debug('pusher_internal:chorus_event without a frame', data);
      return;
    }
    const pos = positionOf(data);
    const ch = channelNamed(name);
    if (pos && ch) {
      const last = current(name, ch);
      if (last && last.epoch === pos.epoch && pos.serial <= last.serial) return; // already delivered
      store(name, pos, ch);
    } else if (!pos) debug('pusher_internal:chorus_event without a position', data);
    // Like a plain frame of a channel the app does not have: global handlers still get it.
    deliver(name, data.frame);
  };

  const onPosition = (name: string, data: unknown, failed: boolean): void => {
    const pos = positionOf(data);
    const ch = channelNamed(name);
    if (!pos || !ch || !isObject(data)) {
      if (!pos) debug(`${failed ? 'pusher_internal:chorus_recovery_failed' : 'pusher_internal:chorus_position'} without a position`, data);
      return;
    }
    current(name, ch);
    store(name, pos, ch);
    const resumed = pending.delete(name) && !passive;
    if (failed) {
      const reason = typeof data.reason === 'string' ? data.reason : 'unavailable';
      const ev: RecoveryFailedEvent = { reason, serial: pos.serial, epoch: pos.epoch };
      ch.emit('chorus:recovery_failed', ev);
    } else if (resumed) {
      const replayed = typeof data.replayed === 'number' ? data.replayed : 0;
      const ev: RecoveredEvent = { replayed, serial: pos.serial, epoch: pos.epoch };
      ch.emit('chorus:recovered', ev);
    }
  };

  const onMessage = (message: unknown): void => {
    if (disabled || !isObject(message) || typeof message.event !== 'string') return;
    const { event, data } = message;
    const name = typeof message.channel === 'string' ? message.channel : '';
    switch (event) {
      case 'pusher_internal:chorus_recovery':
        awaitingAck = false;
        return;
      case 'pusher:error':
        // A server without the extension: "Unknown event: chorus:recovery". Stay out of the way.
        if (awaitingAck && isObject(data) && typeof data.message === 'string' && data.message.includes('chorus:recovery')) {
          awaitingAck = false;
          passive = true;
          pending = new Set();
          debug('the server refused chorus:recovery; recovery is off for this connection', data);
        }
        return;
      case 'pusher_internal:chorus_event':
        if (name) onChorusEvent(name, data);
        else debug('pusher_internal:chorus_event without a channel', message);
        return;
      case 'pusher_internal:chorus_position':
      case 'pusher_internal:chorus_recovery_failed':
        if (name) onPosition(name, data, event === 'pusher_internal:chorus_recovery_failed');
        return;
      default:
        return;
    }
  };

  pusher.connection.bind('state_change', onStateChange);
  pusher.connection.bind('message', onMessage);

  const handle: RecoveryHandle = {
    positions() {
      const out: Record<string, RecoveryPosition> = {};
      for (const [name, { serial, epoch }] of entries) out[name] = { serial, epoch };
      return out;
    },
    disable() {
      if (disabled) return;
      disabled = true;
      pusher.connection.unbind('state_change', onStateChange);
      pusher.connection.unbind('message', onMessage);
      handles.delete(pusher);
    },
  };
  handles.set(pusher, handle);

  // Enabled on a connection that is already up: opt in now (it applies from here on).
  if (pusher.connection.state === 'connected') onStateChange({ current: 'connected' });
  return handle;
}

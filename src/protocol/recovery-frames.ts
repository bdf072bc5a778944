// Frames of Chorus's history and recovery extension (docs/RECOVERY.md). Only
// connections that opted in with `chorus:recovery` ever receive them.

/** What a numbered delivery carries; the plain frame is embedded verbatim (it is a JSON object). */
export interface NumberedFrameParts {
  readonly serial: number;
  readonly epoch: string;
  readonly frame: string;
}

export const RECOVERY_ACK = '{"event":"pusher_internal:chorus_recovery","data":{"v":1}}';

export const numberedEventFrame = (channel: string, e: NumberedFrameParts): string =>
  '{"event":"pusher_internal:chorus_event","channel":' +
  JSON.stringify(channel) +
  ',"data":{"serial":' +
  e.serial +
  ',"epoch":' +
  JSON.stringify(e.epoch) +
  ',"frame":' +
  e.frame +
  '}}';

export const positionFrame = (channel: string, serial: number, epoch: string | null, replayed: number): string =>
  JSON.stringify({ event: 'pusher_internal:chorus_position', channel, data: { serial, epoch, replayed } });

export type RecoveryFailure = 'epoch_changed' | 'trimmed' | 'too_far_behind' | 'no_history' | 'unavailable';

export const recoveryFailedFrame = (channel: string, reason: RecoveryFailure, serial: number, epoch: string | null): string =>
  JSON.stringify({ event: 'pusher_internal:chorus_recovery_failed', channel, data: { reason, serial, epoch } });

// What the WebSocket edge needs: its own settings and the parts it calls.
import type { Logger } from 'pino';
import type { AppStore } from '../../apps/store.js';
import type { SessionTopics } from '../../conn/session-topics.js';
import type { Core } from '../../core/core.js';
import type { Metrics } from '../../metrics/metrics.js';
import type { ControlBudget } from './control-budget.js';
import type { IpGate, IpLimits } from './ip-gate.js';

export interface WsSettings {
  pathPrefix: string;
  /** seconds advertised in connection_established; the server pings after this much silence */
  activityTimeoutSeconds: number;
  maxPayloadBytes: number;
  /** seconds a connection of an app with enable_user_authentication has to sign in */
  userAuthenticationTimeoutSeconds: number;
  /** channels one connection may hold (null: no cap) */
  maxChannelsPerConnection: number | null;
  controlBudget: ControlBudget;
  /** per-address limits, null when none is on */
  ipLimits: IpLimits | null;
}

export interface WsDeps {
  settings: WsSettings;
  core: Core;
  apps: AppStore;
  metrics: Metrics;
  ipGate: IpGate;
  /** the HTTP fallback sessions' topics, beside the engine's */
  sessionTopics: SessionTopics;
  log: Logger;
}

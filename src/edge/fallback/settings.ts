// What the HTTP fallback edge needs: the WebSocket edge's parts (a session is the same
// connection to the core), its own settings and the HTTP parts it reads bodies with.
import type { CorsPolicy } from '../http/cors.js';
import type { BodyBudget } from '../http/body.js';
import type { AddressCap } from '../ws/ip-gate.js';
import type { WsDeps } from '../ws/settings.js';
import type { FallbackSessions, SessionTiming } from './sessions.js';
import type { SessionDirectory } from './forward.js';

export interface FallbackSettings {
  enabled: boolean;
  pathPrefix: string;
  /** X-Forwarded-For hops to trust for the client's address */
  trustHops: number;
  /** sessions one address may hold on this node, a box counting as one (null: no cap) */
  maxSessionsPerIp: number | null;
  /** the largest xhr_send body (frames are JSON strings inside a JSON array: escaped) */
  maxSendBytes: number;
  timing: SessionTiming;
}

export interface FallbackDeps extends WsDeps {
  fallback: FallbackSettings;
  sessions: FallbackSessions;
  cors: CorsPolicy;
  bodyBudget: BodyBudget;
  /** the engine's topics (every WebSocket subscriber of a topic) */
  publishToEngine(topic: string, frame: string): void;
  isDraining(): boolean;
  /** in a box of workers: which worker holds which session (null: a node on its own) */
  directory: SessionDirectory | null;
  /** in a box of workers: the box-wide count of sessions per address (null: this node's own) */
  sessionCap: AddressCap | null;
}

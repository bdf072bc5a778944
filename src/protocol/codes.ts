// Pusher protocol error and close codes (PROTOCOL.md section 4).
export const CloseCode = {
  /** RFC 6455: a frame over websocket_max_payload_kb */
  MESSAGE_TOO_BIG: 1009,
  SSL_ONLY: 4000,
  APP_NOT_FOUND: 4001,
  APP_DISABLED: 4003,
  APP_OVER_QUOTA: 4004,
  PATH_NOT_FOUND: 4005,
  INVALID_VERSION: 4006,
  UNSUPPORTED_PROTOCOL: 4007,
  NO_PROTOCOL: 4008,
  UNAUTHORIZED: 4009,
  OVER_CAPACITY: 4100,
  RECONNECT: 4200,
  PONG_NOT_RECEIVED: 4201,
  INACTIVITY: 4202,
  CLIENT_EVENT_REJECTED: 4301,
  WATCHLIST_LIMIT: 4302,
} as const;

export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode];

/** A refusal to send to a client: a `pusher:error` frame, and a close when `close` is set. */
export interface ProtocolError {
  code: number | null;
  message: string;
  close: boolean;
}

export const protocolError = (code: number | null, message: string, close = false): ProtocolError => ({
  code,
  message,
  close,
});

// Writing HTTP responses with uWS: status lines, JSON bodies and CORS on every answer.
import type { HttpResponse } from 'uWebSockets.js';
import { ANY_ORIGIN, type HeaderList } from './cors.js';

const STATUS: Record<number, string> = {
  200: '200 OK',
  204: '204 No Content',
  303: '303 See Other',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  403: '403 Forbidden',
  404: '404 Not Found',
  405: '405 Method Not Allowed',
  408: '408 Request Timeout',
  413: '413 Payload Too Large',
  415: '415 Unsupported Media Type',
  429: '429 Too Many Requests',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};

export const statusLine = (status: number): string => STATUS[status] ?? `${status} Unknown`;

/** A reply as handlers return it; written once by `send`. */
export interface Reply {
  status: number;
  body: string;
  contentType?: string;
  headers?: Record<string, string>;
  /** close the connection after answering (e.g. an unread oversized body) */
  close?: boolean;
}

export const jsonReply = (status: number, value: unknown): Reply => ({ status, body: JSON.stringify(value) });
export const errorReply = (status: number, error: string): Reply => jsonReply(status, { error });

/** Writes the reply; the caller must be inside a cork or the handler's synchronous part. */
export function writeReply(res: HttpResponse, reply: Reply, cors: HeaderList = ANY_ORIGIN): void {
  // uWS answers 200 OK unless told otherwise: one native call less on every publish.
  if (reply.status !== 200) res.writeStatus(statusLine(reply.status));
  res.writeHeader('Content-Type', reply.contentType ?? 'application/json');
  for (let i = 0; i < cors.length; i++) res.writeHeader(cors[i][0], cors[i][1]);
  if (reply.headers) for (const [k, v] of Object.entries(reply.headers)) res.writeHeader(k, v);
  res.end(reply.body, reply.close === true);
}

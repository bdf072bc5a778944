// Sockudo's `http_api` and `cors` sections, with Sockudo's meaning: the largest HTTP
// request body, and which browser origins may call the HTTP API (and with what).
import { z } from 'zod';
import { lenient } from './lenient.js';

/** An HTTP token (a method or header name): what may appear in an Access-Control-Allow-* list. */
const token = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be an HTTP token (a method or header name)');

/** As Sockudo validates CORS origins: "*" or "any", else at most one "*" wildcard. */
const corsOrigin = z
  .string()
  .min(1)
  .refine((o) => o === '*' || o.toLowerCase() === 'any' || (o.match(/\*/g) ?? []).length <= 1, {
    message: 'a CORS origin may hold at most one "*" wildcard',
  });

export const httpApiSchema = z
  .object({
    /** Sockudo's bound on an HTTP request body, in MB; larger bodies get 413. */
    request_limit_in_mb: lenient(z.number().positive().default(10)),
  })
  .prefault({});

export const corsSchema = z
  .object({
    /** Access-Control-Allow-Credentials for listed origins (never with "*", as in Sockudo). */
    credentials: z.boolean().default(true),
    origin: z.array(corsOrigin).default(['*']),
    methods: z.array(token).min(1).default(['GET', 'POST', 'OPTIONS']),
    allowed_headers: z.array(token).default(['Authorization', 'Content-Type', 'X-Requested-With', 'Accept']),
  })
  .prefault({});

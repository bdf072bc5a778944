// An application as the rest of the node sees it: the validated config shape.
import type { AppConfig } from '../config/schema.js';

export type App = AppConfig;

/** Bytes from a limit in KB, or null for "no limit". */
export const kb = (value: number | null): number | null => (value === null ? null : value * 1024);

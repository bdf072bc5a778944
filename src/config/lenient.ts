// Sockudo accepts numbers as JSON numbers or numeric strings ("6001"); every numeric option
// of every config section reads them the same way.
import { z } from 'zod';

export const numericString = (v: unknown) => (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v.trim()) ? Number(v) : v);

/** Lets a numeric option be written as a string too. */
export const lenient = <T extends z.ZodType>(schema: T) => z.preprocess(numericString, schema);

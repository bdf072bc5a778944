// Finds keys in a raw config that the schema does not know, so they can be
// logged as warnings (an existing Sockudo config has options Chorus lacks).
import type { z } from 'zod';

type AnySchema = z.ZodType;

/** Peels optional/default/prefault/nullable/pipe wrappers down to the structural schema. */
function unwrap(schema: AnySchema): AnySchema {
  let current: AnySchema = schema;
  for (let i = 0; i < 10; i++) {
    const def = (current as unknown as { _zod: { def: Record<string, unknown> } })._zod.def;
    const inner = (def.innerType ?? (def.type === 'pipe' ? def.in : undefined)) as AnySchema | undefined;
    if (!inner) return current;
    current = inner;
  }
  return current;
}

function defOf(schema: AnySchema): Record<string, unknown> {
  return (schema as unknown as { _zod: { def: Record<string, unknown> } })._zod.def;
}

export function findUnknownKeys(schema: AnySchema, value: unknown, path = ''): string[] {
  const s = unwrap(schema);
  const def = defOf(s);
  if (def.type === 'object' && value && typeof value === 'object' && !Array.isArray(value)) {
    const shape = def.shape as Record<string, AnySchema>;
    const found: string[] = [];
    for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
      const childPath = path ? `${path}.${key}` : key;
      if (!(key in shape)) found.push(childPath);
      else found.push(...findUnknownKeys(shape[key], child, childPath));
    }
    return found;
  }
  if (def.type === 'array' && Array.isArray(value)) {
    const element = def.element as AnySchema;
    return value.flatMap((item, i) => findUnknownKeys(element, item, `${path}[${i}]`));
  }
  return [];
}

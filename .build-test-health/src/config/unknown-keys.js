/** Peels optional/default/prefault/nullable/pipe wrappers down to the structural schema. */
function unwrap(schema) {
    let current = schema;
    for (let i = 0; i < 10; i++) {
        const def = current._zod.def;
        const inner = (def.innerType ?? (def.type === 'pipe' ? def.in : undefined));
        if (!inner)
            return current;
        current = inner;
    }
    return current;
}
function defOf(schema) {
    return schema._zod.def;
}
export function findUnknownKeys(schema, value, path = '') {
    const s = unwrap(schema);
    const def = defOf(s);
    if (def.type === 'object' && value && typeof value === 'object' && !Array.isArray(value)) {
        const shape = def.shape;
        const found = [];
        for (const [key, child] of Object.entries(value)) {
            const childPath = path ? `${path}.${key}` : key;
            if (!(key in shape))
                found.push(childPath);
            else
                found.push(...findUnknownKeys(shape[key], child, childPath));
        }
        return found;
    }
    if (def.type === 'array' && Array.isArray(value)) {
        const element = def.element;
        return value.flatMap((item, i) => findUnknownKeys(element, item, `${path}[${i}]`));
    }
    return [];
}

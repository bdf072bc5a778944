/** Bytes from a limit in KB, or null for "no limit". */
export const kb = (value) => (value === null ? null : value * 1024);

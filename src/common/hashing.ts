import { createHash } from 'node:crypto';
import { configure } from 'safe-stable-stringify';

// Object keys sorted at every level (by UTF-16 code unit, as Array#sort does); keys whose value
// is undefined left out, undefined in an array written as null, as JSON.stringify does. A
// circular value is a bug, not a body: it throws instead of being written as "[Circular]".
const stableStringify = configure({ deterministic: true, circularValue: TypeError });

/**
 * JSON with object keys sorted at every level, so equal values hash equally. Request hashes of
 * stored usage depend on this text byte for byte: src/common/hashing.spec.ts pins it.
 */
export function canonicalJson(value: unknown): string {
  return stableStringify(value ?? null) ?? 'null';
}

export const sha256Hex = (text: string) => createHash('sha256').update(text).digest('hex');

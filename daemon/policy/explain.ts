/**
 * Turns Ajv's schema errors into located problems that say what was expected, using the
 * `description` each schema node carries and the source locations kept by document.ts.
 */
import type { ErrorObject } from 'ajv/dist/2020.js';
import type { Located, Segment, SourceTree } from './document.js';

/** Keys longer than this get no "did you mean" hint; it is only meant for typos. */
const MAX_SUGGEST_LENGTH = 64;

export function decodePointer(pointer: string): string[] {
  if (pointer.length === 0) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/** A short rendering of a found value for "expected X, found Y". */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (typeof value === 'string') {
    if (value.length === 0) return 'an empty string';
    if (value.length > 32) return `a ${value.length}-character string`;
    return JSON.stringify(value);
  }
  if (typeof value === 'number') return `the number ${String(value)}`;
  if (typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : `a list of ${value.length}`;
  const n = Object.keys(value as object).length;
  return n === 0 ? 'an empty mapping' : `a mapping of ${n}`;
}

/**
 * Levenshtein distance, or `limit` as soon as it is clear the distance is at least that:
 * a file with thousands of unknown keys then costs a few comparisons per key, not a full
 * table against every known field.
 */
function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) >= limit) return limit;
  let prev = new Uint16Array(b.length + 1);
  let cur = new Uint16Array(b.length + 1);
  for (let j = 0; j <= b.length; j += 1) prev[j] = j;
  for (let i = 1; i <= a.length; i += 1) {
    cur[0] = i;
    let rowMin = i;
    const ca = a.charCodeAt(i - 1);
    for (let j = 1; j <= b.length; j += 1) {
      const cost = ca === b.charCodeAt(j - 1) ? 0 : 1;
      const d = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
      cur[j] = d;
      if (d < rowMin) rowMin = d;
    }
    if (rowMin >= limit) return limit;
    [prev, cur] = [cur, prev];
  }
  return Math.min(prev[b.length] as number, limit);
}

function suggestion(unknown: string, known: string[]): string {
  if (unknown.length > MAX_SUGGEST_LENGTH) return '';
  let best: string | undefined;
  let bestDistance = 3;
  for (const k of known) {
    const d = editDistance(unknown, k, bestDistance);
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best === undefined ? '' : ` (did you mean '${best}'?)`;
}

function descriptionOf(schema: unknown): string {
  const d = (schema as { description?: unknown } | undefined)?.description;
  return typeof d === 'string' ? d : 'a different value';
}

function propertyNamesOf(schema: unknown): string[] {
  const props = (schema as { properties?: unknown } | undefined)?.properties;
  return props !== null && typeof props === 'object' ? Object.keys(props) : [];
}

function shortKey(key: string): string {
  return key.length > 64 ? `${key.slice(0, 61)}...` : key;
}

export function explain(err: ErrorObject, tree: SourceTree): Located | undefined {
  const at: Segment[] = decodePointer(err.instancePath);
  const params = err.params as Record<string, unknown>;
  const expected = descriptionOf(err.parentSchema);

  // The wrapper error of propertyNames repeats what its inner error already said.
  if (err.keyword === 'propertyNames') return undefined;
  if (err.propertyName !== undefined) {
    const where = tree.locate([...at, err.propertyName], true);
    return { ...where, message: `expected ${expected} as the key, found ${JSON.stringify(shortKey(err.propertyName))}` };
  }

  switch (err.keyword) {
    case 'additionalProperties': {
      const key = String(params['additionalProperty']);
      const known = propertyNamesOf(err.parentSchema);
      const where = tree.locate([...at, key], true);
      return {
        ...where,
        message: `unknown field ${JSON.stringify(shortKey(key))}${suggestion(key, known)}; expected one of: ${known.join(', ')}`,
      };
    }
    case 'required': {
      const key = String(params['missingProperty']);
      const props = (err.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties;
      const where = tree.locate([...at, key]);
      return { ...where, message: `missing required field '${key}': expected ${descriptionOf(props?.[key])}` };
    }
    case 'minItems':
    case 'minProperties':
    case 'maxItems':
    case 'maxProperties': {
      // Descriptions already say "non-empty" or "at least one"; other bounds are spelt out.
      const limit = Number(params['limit']);
      const isMin = err.keyword.startsWith('min');
      const bound = isMin && limit === 1 ? '' : ` (${isMin ? 'at least' : 'at most'} ${limit} entries)`;
      const where = tree.locate(at);
      return { ...where, message: `expected ${expected}${bound}, found ${describeValue(err.data)}` };
    }
    default: {
      const where = tree.locate(at);
      return { ...where, message: `expected ${expected}, found ${describeValue(err.data)}` };
    }
  }
}

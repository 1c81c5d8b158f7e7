/**
 * Reads policy YAML into a plain value and remembers where every part of it came from,
 * so that a problem found later (by the schema or by a semantic check) can name the
 * line, column and field path. The file is operator input but may be written by
 * tooling or copied from elsewhere, so it is read defensively: aliases, custom tags and
 * non-scalar keys are refused, nesting is bounded, and parsed objects have no prototype.
 */
import { Composer, LineCounter, Parser, isAlias, isMap, isPair, isScalar, isSeq } from 'yaml';
import type { CST, Document, Node as YamlNode } from 'yaml';

/** Deeper than any valid policy (which nests 5 levels); stops hostile nesting early. */
const MAX_DEPTH = 32;
const MAX_YAML_PROBLEMS = 10;

/** Path segments: a number is a sequence index, a string a mapping key. */
export type Segment = string | number;

export interface Located {
  line: number;
  column: number;
  path: string;
  message: string;
}

interface Place {
  /** Where the value starts (or the key, when there is no value node). */
  value: number;
  /** Where the key starts, for values found in a mapping. */
  key?: number;
  path: string;
}

export interface SourceTree {
  /** The document as plain data: null-prototype objects, arrays, strings, numbers, booleans, null. */
  value: unknown;
  /** Problems with the YAML itself; when non-empty, `value` must not be trusted. */
  problems: Located[];
  /**
   * Location of the value at a JSON Pointer (as in Ajv's instancePath), or of its key.
   * A pointer to something absent resolves to its nearest present ancestor, with the
   * path still naming the absent field.
   */
  locate(pointer: readonly Segment[], onKey?: boolean): Omit<Located, 'message'>;
}

function isPlainKeyChar(code: number): boolean {
  return (
    (code >= 0x30 && code <= 0x39) ||
    (code >= 0x41 && code <= 0x5a) ||
    (code >= 0x61 && code <= 0x7a) ||
    code === 0x5f ||
    code === 0x2d
  );
}

function isPlainKey(key: string): boolean {
  if (key.length === 0) return false;
  for (let i = 0; i < key.length; i += 1) if (!isPlainKeyChar(key.charCodeAt(i))) return false;
  return true;
}

/** `rules[0].lease.ttl`; keys that are not plain words are quoted: `pcrs["sha 256"]`. */
export function formatPath(segments: readonly Segment[], prefix = ''): string {
  let out = prefix;
  for (const seg of segments) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (isPlainKey(seg)) out += out.length === 0 ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

function pointerKey(segments: readonly Segment[]): string {
  return JSON.stringify(segments.map(String));
}

function scalarKey(node: unknown): string | undefined {
  if (!isScalar(node)) return undefined;
  const v = node.value;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

/**
 * The deepest nesting in the concrete syntax tree, walked without recursion, or the
 * offset of the first collection deeper than `limit`. The YAML composer recurses once per
 * level; checking first keeps a hostile `[[[[...` from exhausting the stack in there.
 */
export function cstTooDeep(tokens: readonly CST.Token[], limit: number): number | undefined {
  const stack: { token: CST.Token; depth: number }[] = tokens.map((token) => ({ token, depth: 0 }));
  while (stack.length > 0) {
    const { token, depth } = stack.pop() as { token: CST.Token; depth: number };
    switch (token.type) {
      case 'document':
        if (token.value) stack.push({ token: token.value, depth: depth + 1 });
        break;
      case 'block-map':
      case 'block-seq':
      case 'flow-collection':
        if (depth > limit) return token.offset;
        for (const item of token.items) {
          if (item.key) stack.push({ token: item.key, depth: depth + 1 });
          if (item.value) stack.push({ token: item.value, depth: depth + 1 });
        }
        break;
      default:
        break;
    }
  }
  return undefined;
}

function compose(text: string, lineCounter: LineCounter): { doc: Document.Parsed | undefined; extraDocAt?: number; tooDeepAt?: number } {
  const tokens = [...new Parser(lineCounter.addNewLine).parse(text)];
  const tooDeepAt = cstTooDeep(tokens, MAX_DEPTH);
  if (tooDeepAt !== undefined) return { doc: undefined, tooDeepAt };
  const composer = new Composer({
    keepSourceTokens: true,
    // yaml's own duplicate check is quadratic in the number of keys; convert() finds
    // duplicates in linear time instead, also between keys such as 1 and "1".
    uniqueKeys: false,
    strict: true,
    version: '1.2',
    schema: 'core',
  });
  let doc: Document.Parsed | undefined;
  for (const next of composer.compose(tokens, true, text.length)) {
    if (doc === undefined) doc = next;
    else return { doc, extraDocAt: next.range[0] };
  }
  return { doc };
}

export function readYaml(text: string): SourceTree {
  const lineCounter = new LineCounter();
  const { doc, extraDocAt, tooDeepAt } = compose(text, lineCounter);
  const at = (offset: number): { line: number; column: number } => {
    const pos = lineCounter.linePos(offset);
    return { line: pos.line, column: pos.col };
  };
  const refuse = (offset: number, message: string): SourceTree => ({
    value: null,
    problems: [{ ...at(offset), path: '', message }],
    locate: (pointer) => ({ line: 1, column: 1, path: formatPath(pointer.map(String)) }),
  });
  if (doc === undefined) {
    return refuse(tooDeepAt ?? 0, `expected at most ${MAX_DEPTH} levels of nesting`);
  }

  const places = new Map<string, Place>();
  const convertProblems: { offset: number; path: string; message: string }[] = [];

  const record = (segments: Segment[], node: YamlNode | null, keyOffset: number | undefined): void => {
    const path = formatPath(segments);
    const start = node?.range?.[0] ?? keyOffset ?? 0;
    places.set(pointerKey(segments), { value: start, key: keyOffset, path });
  };

  const convert = (node: unknown, segments: Segment[], depth: number): unknown => {
    const here = formatPath(segments);
    const offset = (node as YamlNode | null)?.range?.[0] ?? 0;
    if (node === null || node === undefined) return null;
    if (depth > MAX_DEPTH) {
      convertProblems.push({ offset, path: here, message: `nesting deeper than ${MAX_DEPTH} levels is not part of the policy format` });
      return null;
    }
    if (isAlias(node)) {
      convertProblems.push({ offset, path: here, message: 'expected a value written out; YAML aliases (*name) are not allowed in a policy' });
      return null;
    }
    if (isScalar(node)) {
      const v: unknown = node.value;
      if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
      const tag = (node.tag ?? '').replace('tag:yaml.org,2002:', '!!');
      convertProblems.push({ offset, path: here, message: `expected a plain string, number, boolean or null; the tag ${tag} is not part of the policy format` });
      return null;
    }
    if (isSeq(node)) {
      const out: unknown[] = [];
      node.items.forEach((item, i) => {
        const child = [...segments, i];
        record(child, (item as YamlNode | null) ?? null, undefined);
        out.push(convert(item, child, depth + 1));
      });
      return out;
    }
    if (isMap(node)) {
      const out = Object.create(null) as Record<string, unknown>;
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const keyNode = pair.key as YamlNode | null;
        const keyOffset = keyNode?.range?.[0] ?? offset;
        const key = scalarKey(keyNode);
        if (key === undefined) {
          convertProblems.push({ offset: keyOffset, path: here, message: 'expected a string or number as a mapping key' });
          continue;
        }
        const child = [...segments, key];
        // Equal keys are found here rather than by the composer (see compose()), which
        // also catches keys that differ in YAML but not as text, such as 1 and "1".
        if (Object.prototype.hasOwnProperty.call(out, key)) {
          convertProblems.push({ offset: keyOffset, path: formatPath(child), message: 'duplicate key: each key may appear only once in a mapping' });
          continue;
        }
        record(child, (pair.value as YamlNode | null) ?? null, keyOffset);
        out[key] = convert(pair.value, child, depth + 1);
      }
      return out;
    }
    convertProblems.push({ offset, path: here, message: 'expected a mapping, sequence or scalar' });
    return null;
  };

  record([], doc.contents as YamlNode | null, undefined);
  const value = convert(doc.contents, [], 0);

  const problems: Located[] = [];
  if (extraDocAt !== undefined) problems.push({ ...at(extraDocAt), path: '', message: 'expected a single YAML document' });
  const yamlErrors = [...doc.errors, ...doc.warnings];
  const seen = new Set<string>();
  for (const err of yamlErrors) {
    const offset = err.pos[0];
    const dedupe = `${offset}:${err.code}`;
    if (seen.has(dedupe)) continue;
    seen.add(dedupe);
    if (problems.length === MAX_YAML_PROBLEMS) break;
    // After a syntax error the tree is a guess; a field path taken from it would mislead.
    const message =
      err.code === 'RESOURCE_EXHAUSTION'
        ? 'expected a document of bounded nesting; this one is too deep to read'
        : `expected valid YAML: ${err.message}`;
    problems.push({ ...at(offset), path: '', message });
  }
  if (problems.length === 0) {
    for (const p of convertProblems) problems.push({ ...at(p.offset), path: p.path, message: p.message });
  }

  const locate = (pointer: readonly Segment[], onKey = false): Omit<Located, 'message'> => {
    for (let n = pointer.length; n >= 0; n -= 1) {
      const place = places.get(pointerKey(pointer.slice(0, n)));
      if (place === undefined) continue;
      // A missing field is reported at the key of the mapping that should hold it.
      const exact = n === pointer.length;
      const offset = (exact && !onKey) ? place.value : (place.key ?? place.value);
      const rest = pointer.slice(n).map(String);
      return { ...at(offset), path: formatPath(rest, place.path) };
    }
    return { line: 1, column: 1, path: formatPath(pointer.map(String)) };
  };

  return { value, problems, locate };
}

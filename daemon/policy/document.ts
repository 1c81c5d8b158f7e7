/**
 * Reads policy YAML into a plain value and remembers where every part of it came from,
 * so that a problem found later (by the schema or by a semantic check) can name the
 * line, column and field path. The file is operator input but may be written by
 * tooling or copied from elsewhere, so it is read defensively: aliases, custom tags and
 * non-scalar keys are refused, nesting is bounded, and parsed objects have no prototype.
 */
import { LineCounter, isAlias, isMap, isPair, isScalar, isSeq } from 'yaml';
import type { Document, Node as YamlNode } from 'yaml';
import { MAX_DEPTH, compose } from './yaml-compose.js';

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

type Position = Pick<Located, 'line' | 'column'>;

/**
 * `text` as a SourceTree. Problems with the YAML itself (a second document, the parser's
 * errors and warnings) are reported alone: after one, what conversion finds is not.
 */
export function readYaml(text: string): SourceTree {
  const lineCounter = new LineCounter();
  const { doc, extraDocAt, tooDeepAt } = compose(text, lineCounter);
  const at = (offset: number): Position => {
    const pos = lineCounter.linePos(offset);
    return { line: pos.line, column: pos.col };
  };
  if (doc === undefined) return refused(at(tooDeepAt ?? 0), `expected at most ${MAX_DEPTH} levels of nesting`);

  const plain = new PlainValue();
  plain.record([], doc.contents as YamlNode | null, undefined);
  const value = plain.convert(doc.contents, [], 0);
  const problems = yamlProblems(doc, extraDocAt, at);
  if (problems.length === 0) {
    for (const p of plain.problems) problems.push({ ...at(p.offset), path: p.path, message: p.message });
  }
  return { value, problems, locate: locator(plain.places, at) };
}

/** A document refused before conversion: one problem, and nothing to locate in. */
function refused(where: Position, message: string): SourceTree {
  return {
    value: null,
    problems: [{ ...where, path: '', message }],
    locate: (pointer) => ({ line: 1, column: 1, path: formatPath(pointer.map(String)) }),
  };
}

/**
 * Problems with the YAML itself: a second document, then the parser's errors and warnings,
 * each position and code once, at most MAX_YAML_PROBLEMS in all.
 */
function yamlProblems(doc: Document.Parsed, extraDocAt: number | undefined, at: (offset: number) => Position): Located[] {
  const problems: Located[] = [];
  if (extraDocAt !== undefined) problems.push({ ...at(extraDocAt), path: '', message: 'expected a single YAML document' });
  const seen = new Set<string>();
  for (const err of [...doc.errors, ...doc.warnings]) {
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
  return problems;
}

/** SourceTree.locate over the places a conversion recorded. */
function locator(places: ReadonlyMap<string, Place>, at: (offset: number) => Position): SourceTree['locate'] {
  return (pointer, onKey = false) => {
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
}

/**
 * A composed document as plain data, with the place of every part recorded by pointer.
 * What a policy never needs is refused, each with the offset and path where it was found:
 * nesting beyond MAX_DEPTH, aliases, scalars other than strings, numbers, booleans and null
 * (such as !!binary), non-scalar keys and duplicate keys.
 */
class PlainValue {
  readonly places = new Map<string, Place>();
  readonly problems: { offset: number; path: string; message: string }[] = [];

  record(segments: Segment[], node: YamlNode | null, keyOffset: number | undefined): void {
    const path = formatPath(segments);
    const start = node?.range?.[0] ?? keyOffset ?? 0;
    this.places.set(pointerKey(segments), { value: start, key: keyOffset, path });
  }

  convert(node: unknown, segments: Segment[], depth: number): unknown {
    const here = formatPath(segments);
    const offset = (node as YamlNode | null)?.range?.[0] ?? 0;
    if (node === null || node === undefined) return null;
    if (depth > MAX_DEPTH) return this.refuse(offset, here, `nesting deeper than ${MAX_DEPTH} levels is not part of the policy format`);
    if (isAlias(node)) return this.refuse(offset, here, 'expected a value written out; YAML aliases (*name) are not allowed in a policy');
    if (isScalar(node)) {
      const v: unknown = node.value;
      if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
      const tag = (node.tag ?? '').replace('tag:yaml.org,2002:', '!!');
      return this.refuse(offset, here, `expected a plain string, number, boolean or null; the tag ${tag} is not part of the policy format`);
    }
    if (isSeq(node)) return this.sequence(node.items, segments, depth);
    if (isMap(node)) return this.mapping(node.items, segments, depth, offset, here);
    return this.refuse(offset, here, 'expected a mapping, sequence or scalar');
  }

  private sequence(items: readonly unknown[], segments: Segment[], depth: number): unknown[] {
    const out: unknown[] = [];
    items.forEach((item, i) => {
      const child = [...segments, i];
      this.record(child, (item as YamlNode | null) ?? null, undefined);
      out.push(this.convert(item, child, depth + 1));
    });
    return out;
  }

  /** `offset` and `here` are the mapping's own: where a key without a position, or a refused key, is reported. */
  private mapping(items: readonly unknown[], segments: Segment[], depth: number, offset: number, here: string): Record<string, unknown> {
    const out = Object.create(null) as Record<string, unknown>;
    for (const pair of items) {
      if (!isPair(pair)) continue;
      const keyNode = pair.key as YamlNode | null;
      const keyOffset = keyNode?.range?.[0] ?? offset;
      const key = scalarKey(keyNode);
      if (key === undefined) {
        this.refuse(keyOffset, here, 'expected a string or number as a mapping key');
        continue;
      }
      const child = [...segments, key];
      // Equal keys are found here rather than by the composer (see yaml-compose.ts), which
      // also catches keys that differ in YAML but not as text, such as 1 and "1".
      if (Object.prototype.hasOwnProperty.call(out, key)) {
        this.refuse(keyOffset, formatPath(child), 'duplicate key: each key may appear only once in a mapping');
        continue;
      }
      this.record(child, (pair.value as YamlNode | null) ?? null, keyOffset);
      out[key] = this.convert(pair.value, child, depth + 1);
    }
    return out;
  }

  private refuse(offset: number, path: string, message: string): null {
    this.problems.push({ offset, path, message });
    return null;
  }
}

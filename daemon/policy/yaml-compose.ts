/**
 * The first step of reading a policy: YAML text to one composed document. Nesting is bounded
 * before the composer sees the tokens, and the composer is strict (YAML 1.2, core schema).
 * What the document holds is checked afterwards, as it is converted (document.ts).
 */
import { Composer, Parser } from 'yaml';
import type { CST, Document, LineCounter } from 'yaml';

/** Deeper than any valid policy (which nests 5 levels); stops hostile nesting early. */
export const MAX_DEPTH = 32;

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

/**
 * The first document of `text`, and where a second one starts if there is one; no document
 * when the text nests deeper than MAX_DEPTH (tooDeepAt: the offset of the first collection
 * too deep). `lineCounter` learns the text's line breaks along the way.
 */
export function compose(text: string, lineCounter: LineCounter): { doc: Document.Parsed | undefined; extraDocAt?: number; tooDeepAt?: number } {
  const tokens = [...new Parser(lineCounter.addNewLine).parse(text)];
  const tooDeepAt = cstTooDeep(tokens, MAX_DEPTH);
  if (tooDeepAt !== undefined) return { doc: undefined, tooDeepAt };
  const composer = new Composer({
    keepSourceTokens: true,
    // yaml's own duplicate check is quadratic in the number of keys; the conversion in
    // document.ts finds duplicates in linear time instead, also between keys such as 1 and "1".
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

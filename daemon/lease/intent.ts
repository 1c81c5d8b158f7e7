/**
 * A lease's execution intent as the manager keeps it: the resolved intent, its canonical
 * encoding (for the audit record) and its digest (for the token), computed once at grant and
 * kept by every renewal. Resolving it (hashing files, reading the command line) is the API
 * layer's job; the manager only awaits the resolver it is handed.
 */
import { encodeIntent, intentDigest, type ResolvedIntent } from '../verify/intent/codec.js';

export interface RecordedIntent {
  intent: ResolvedIntent;
  encoding: Buffer;
  digest: Buffer;
}

/** Resolves the caller's intent; rejects with an INTENT_* code when it cannot. */
export type IntentResolver = () => Promise<ResolvedIntent>;

export function recordedIntent(intent: ResolvedIntent): RecordedIntent {
  const encoding = encodeIntent(intent);
  return { intent, encoding, digest: intentDigest(encoding) };
}

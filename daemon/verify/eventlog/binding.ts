/**
 * Whether an event's recorded data is what was measured. For many event types (separators,
 * UEFI variables, EFI actions, GPT) the digest is the hash of the event data itself; for
 * images and blobs it is the hash of something not in the log. Policy that relies on
 * `details` of the former kind should check this first: the data is otherwise unbound.
 */
import { createHash } from 'node:crypto';
import { isHashAlg } from '../tpm-alg.js';
import type { TcgEvent } from './types.js';

/** True when every digest of a known algorithm equals that algorithm's hash of `event.data`. */
export function digestsMatchData(event: TcgEvent): boolean {
  let checked = 0;
  for (const [key, digest] of event.digests) {
    if (!isHashAlg(key)) continue;
    if (!createHash(key).update(event.data).digest().equals(digest)) return false;
    checked++;
  }
  return checked > 0;
}

/**
 * The authorization files of `attestctl run --authorization` and `attestctl lease acquire
 * --authorization` (repeatable): each holds one compact JWT, as an issuer handed it out
 * (docs/attestctl.md, "Authorizations"). Read here, bounded and shaped; the daemon verifies them.
 */
import { readFileSync, statSync } from 'node:fs';
import { AttestdError } from '../base/errors.js';
import { MAX_AUTHORIZATION_BYTES, MAX_AUTHORIZATIONS } from '../verify/authorization/verify.js';

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** The compact JWTs the files hold, in order; AUTHZ_INVALID naming the first bad file. */
export function readAuthorizationFiles(files: readonly string[]): string[] {
  if (files.length > MAX_AUTHORIZATIONS) throw new AttestdError('AUTHZ_INVALID', `at most ${MAX_AUTHORIZATIONS} authorizations`);
  return files.map((file) => {
    let text: string;
    try {
      // Room for a trailing newline, and no more.
      if (statSync(file).size > MAX_AUTHORIZATION_BYTES + 2) throw new Error(`larger than ${MAX_AUTHORIZATION_BYTES} bytes`);
      text = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new AttestdError('AUTHZ_INVALID', `${file}: ${(err as Error).message}`);
    }
    if (text.length > MAX_AUTHORIZATION_BYTES || !COMPACT_JWS.test(text)) throw new AttestdError('AUTHZ_INVALID', `${file}: not a compact JWT`);
    return text;
  });
}

/**
 * What an authorization authorizes: its `attestd.authorizes` claim, either the digest of one
 * execution intent or explicit constraints (artifact digests, image digest, GPUs, rule), and
 * the check that a lease about to be granted is within it. Pure; the claim is hostile until
 * shaped here.
 */
import { AttestdError } from '../../base/errors.js';
import type { ResolvedIntent } from '../intent/codec.js';

export const AUTHORIZES_CLAIM = 'attestd.authorizes';
const MAX_LIST = 64;

export interface Authorizes {
  /** Lowercase hex SHA-256 of the intent's canonical encoding. */
  intentSha256?: string;
  /** Lowercase hex SHA-256 digests every artifact of the intent must be among. */
  artifacts?: string[];
  /** "sha256:" + lowercase hex; the intent's image digest must be this one. */
  imageDigest?: string;
  /** GPUs (as the lease names them) the lease may cover. */
  gpus?: string[];
  /** The rule the lease must be granted under. */
  rule?: string;
}

/** What a grant would be: the rule, the GPUs, and the intent with its digest. */
export interface AuthorizationSubject {
  rule: string;
  gpus: string[];
  intent?: ResolvedIntent;
  intentSha256?: Buffer;
}

const HEX64 = /^[0-9a-f]{64}$/;
const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const own = (o: Record<string, unknown>, k: string): unknown => (Object.prototype.hasOwnProperty.call(o, k) ? o[k] : undefined);

function bad(message: string): never {
  throw new AttestdError('AUTHZ_INVALID', `${AUTHORIZES_CLAIM}: ${message}`);
}

function stringList(v: unknown, what: string, valid: (s: string) => boolean): string[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_LIST) bad(`${what} is not a list of 1 to ${MAX_LIST} entries`);
  const list = v as unknown[];
  if (!list.every((s) => typeof s === 'string' && valid(s))) bad(`${what} has an entry out of shape`);
  return list as string[];
}

/** The claim shaped, or AUTHZ_INVALID: an object with known fields only, at least one of them. */
export function parseAuthorizes(claim: unknown): Authorizes {
  if (!isObj(claim)) bad('missing or not an object');
  const known = ['intent_sha256', 'artifacts', 'image_digest', 'gpus', 'rule'];
  const keys = Object.keys(claim);
  if (keys.length === 0) bad('authorizes nothing');
  const unknown = keys.find((k) => !known.includes(k));
  if (unknown !== undefined) bad(`unknown field ${JSON.stringify(unknown.slice(0, 64))}`);
  const out: Authorizes = {};
  const intent = own(claim, 'intent_sha256');
  if (intent !== undefined) {
    if (typeof intent !== 'string' || !HEX64.test(intent)) bad('intent_sha256 is not 64 lowercase hex characters');
    out.intentSha256 = intent;
  }
  const artifacts = own(claim, 'artifacts');
  if (artifacts !== undefined) out.artifacts = stringList(artifacts, 'artifacts', (s) => HEX64.test(s));
  const image = own(claim, 'image_digest');
  if (image !== undefined) {
    if (typeof image !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(image)) bad('image_digest is not "sha256:" and 64 lowercase hex characters');
    out.imageDigest = image;
  }
  const gpus = own(claim, 'gpus');
  if (gpus !== undefined) out.gpus = stringList(gpus, 'gpus', (s) => s.length > 0 && s.length <= 64);
  const rule = own(claim, 'rule');
  if (rule !== undefined) {
    if (typeof rule !== 'string' || rule.length === 0 || rule.length > 256) bad('rule is not a rule name');
    out.rule = rule;
  }
  return out;
}

/** Why the subject is not within what is authorized, or undefined when it is. */
export function authorizesProblem(a: Authorizes, s: AuthorizationSubject): string | undefined {
  if (a.intentSha256 !== undefined && a.intentSha256 !== s.intentSha256?.toString('hex')) return 'it authorizes another intent';
  if (a.rule !== undefined && a.rule !== s.rule) return `it authorizes rule ${a.rule}, not ${s.rule}`;
  if (a.artifacts !== undefined) {
    const arts = s.intent?.artifacts ?? [];
    if (arts.length === 0) return 'it authorizes artifacts and the intent names none';
    const other = arts.find((x) => !a.artifacts!.includes(x.sha256.toString('hex')));
    if (other) return `it does not authorize artifact "${other.name}"`;
  }
  if (a.imageDigest !== undefined && a.imageDigest !== (s.intent?.imageDigest ?? '')) return 'it authorizes another image';
  if (a.gpus !== undefined) {
    const other = s.gpus.find((g) => !a.gpus!.includes(g));
    if (other !== undefined) return `it does not authorize GPU ${other}`;
  }
  return undefined;
}

/**
 * Appraisal of verified PCR values against a policy. Pure and deterministic: no clock,
 * no file system, no randomness, and the same reasons in the same order for the same
 * input, because the offline auditor re-runs it on recorded evidence and must reach the
 * verdict the daemon logged. It takes PCR banks that verify/quote has already checked
 * against a signed quote; it does not check any signature itself.
 */
import type { HashAlg } from '../verify/tpm-alg.js';
import type { PcrBank } from '../verify/pcr.js';
import { IMA_PCR } from '../verify/ima/replay.js';
import { BOOT_PCRS } from './appraise-boot.js';
import { BANK_ORDER } from './schema-parts.js';
import type { PcrRequirement, Policy } from './types.js';
import type { Reason } from '../base/reason.js';

/*
 * Reason codes made here (stable): PCR_MISMATCH, PCR_NOT_QUOTED, PCR_BANK_DUPLICATE,
 * SHA1_NOT_ALLOWED, POLICY_NO_PCRS; the appraise-*.ts files list theirs.
 */

export interface Verdict {
  pass: boolean;
  reasons: Reason[];
}

function bankRank(alg: HashAlg): number {
  const i = BANK_ORDER.indexOf(alg);
  return i < 0 ? BANK_ORDER.length : i;
}

function ordered(pcrs: readonly PcrRequirement[]): PcrRequirement[] {
  return [...pcrs].sort((a, b) => bankRank(a.alg) - bankRank(b.alg) || a.index - b.index);
}

export function allowedText(allowed: readonly Buffer[]): string {
  if (allowed.length === 0) return 'no value';
  if (allowed.length === 1) return allowed[0]?.toString('hex') ?? '';
  return `one of ${allowed.map((b) => b.toString('hex')).join(', ')}`;
}

/**
 * Pass only if every PCR the policy names is present in the quoted banks and equals one
 * of its allowed values. Checks, each giving its own reason:
 * - the policy names at least one PCR (an empty policy proves nothing: POLICY_NO_PCRS);
 * - a SHA-1 requirement is honoured only when the policy allows SHA-1 (SHA1_NOT_ALLOWED);
 * - no bank is presented twice, which would make the value ambiguous (PCR_BANK_DUPLICATE);
 * - each required PCR was quoted (PCR_NOT_QUOTED);
 * - each required PCR holds an allowed value (PCR_MISMATCH).
 * PCRs the quote covers beyond the policy are ignored.
 */
export function appraisePcrs(policy: Policy, quoted: PcrBank[]): Verdict {
  const reasons = pcrReasons(policy, quoted);
  return { pass: reasons.length === 0, reasons };
}

/**
 * What to do with a quoted value none of a requirement's values allows: undefined to
 * report the usual PCR_MISMATCH, 'accept' to let it pass, or a reason of its own.
 */
export type MismatchHook = (req: PcrRequirement, found: Buffer, name: string) => 'accept' | Reason | undefined;

/** The checks of appraisePcrs, in its order; shared with appraisePcrsAt. */
export function pcrReasons(policy: Policy, quoted: PcrBank[], onMismatch?: MismatchHook): Reason[] {
  const reasons: Reason[] = [];
  if (policy.pcrs.length === 0) {
    reasons.push({ code: 'POLICY_NO_PCRS', message: 'the policy requires no PCR values, so nothing would be attested' });
  }

  const banks = new Map<HashAlg, PcrBank>();
  const duplicates = new Set<HashAlg>();
  for (const bank of quoted) {
    if (banks.has(bank.alg)) duplicates.add(bank.alg);
    else banks.set(bank.alg, bank);
  }
  for (const alg of [...duplicates].sort((a, b) => bankRank(a) - bankRank(b))) {
    reasons.push({ code: 'PCR_BANK_DUPLICATE', message: `the ${alg} bank was presented more than once` });
  }

  for (const req of ordered(policy.pcrs)) {
    const name = `PCR ${req.alg}:${req.index}`;
    if (req.alg === 'sha1' && !policy.allowSha1) {
      reasons.push({ code: 'SHA1_NOT_ALLOWED', message: `${name} is in the SHA-1 bank, which the policy does not allow` });
      continue;
    }
    if (duplicates.has(req.alg)) continue;
    const found = banks.get(req.alg)?.values.get(req.index);
    if (found === undefined) {
      reasons.push({ code: 'PCR_NOT_QUOTED', message: `${name} was not quoted; policy allows ${allowedText(req.allowed)}` });
      continue;
    }
    if (!req.allowed.some((a) => a.equals(found))) {
      const other = onMismatch?.(req, found, name);
      if (other === 'accept') continue;
      reasons.push(
        other ?? {
          code: 'PCR_MISMATCH',
          message: `${name} is ${found.toString('hex')}, policy allows ${allowedText(req.allowed)}`,
        },
      );
    }
  }
  return reasons;
}

/**
 * What the collector must quote: banks in fixed order (sha1, sha256, sha384, sha512), PCRs
 * ascending and unique. Besides the PCRs the policy names, a boot section adds the PCRs its
 * event log accounts for (BOOT_PCRS) and an IMA section adds PCR 10, each in its bank, so
 * that the log's events are vouched for by the quote.
 */
export function requiredSelections(policy: Policy): { alg: HashAlg; pcrs: number[] }[] {
  const byBank = new Map<HashAlg, Set<number>>();
  const add = (alg: HashAlg, index: number): void => {
    const set = byBank.get(alg) ?? new Set<number>();
    set.add(index);
    byBank.set(alg, set);
  };
  for (const req of policy.pcrs) add(req.alg, req.index);
  if (policy.boot !== undefined) for (const pcr of BOOT_PCRS) add(policy.boot.bank, pcr);
  if (policy.ima !== undefined) add(policy.ima.bank, IMA_PCR);
  return [...byBank.keys()]
    .sort((a, b) => bankRank(a) - bankRank(b))
    .map((alg) => ({ alg, pcrs: [...(byBank.get(alg) ?? [])].sort((a, b) => a - b) }));
}

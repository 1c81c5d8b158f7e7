/**
 * Running a verifier's named checks in order, recording each one and telling an observer, for
 * the report verifiers whose callers (the CLIs, the appraisal) show or judge every check:
 * SEV-SNP, TDX and GPU reports.
 *
 * A check runs one of two ways, into the same record:
 *  - must(): the check has to pass. A failure is recorded and told, then the error goes on up
 *    unchanged, so the first failure ends verification (SEV-SNP and GPU reports).
 *  - attempt(): a check whose prerequisites did not pass is skipped; an AttestdError is recorded
 *    as a failure and verification goes on, so every check that can run is run and reported
 *    (TDX). firstProblem() then turns the record into the error a strict caller throws.
 * Any other error is a bug, not a verdict: it is told and thrown, never recorded as a failure.
 */
import { AttestdError, type ErrorCode } from '../base/errors.js';

export type CheckStatus = 'pass' | 'fail' | 'skipped';

/** The record of one check, as the appraisal and the CLI report it. */
export interface CheckRecord<C extends string = string> {
  /** Stable name, e.g. "report-signature" or "quote.signature". */
  name: C;
  status: CheckStatus;
  /** Set on failure: an ErrorCode for verification checks, a reason code for policy checks. */
  code?: string;
  detail: string;
}

/** Told of each check that ran, as it passes or fails; skipped checks are not told. */
export type CheckObserver<C extends string> = (check: C, passed: boolean, detail: string) => void;

const noDetail = (): string => '';

export class CheckRunner<C extends string = string> {
  readonly checks: CheckRecord<C>[] = [];

  constructor(private readonly observer?: CheckObserver<C>) {}

  /** Runs a check that has to pass: returns its value, or records the failure and throws it. */
  must<T>(name: C, run: () => T, detail: (value: T) => string = noDetail): T {
    let value: T;
    try {
      value = run();
    } catch (err) {
      this.failed(name, err);
      throw err;
    }
    this.passed(name, detail(value));
    return value;
  }

  /**
   * Runs a check unless one of `needs` did not pass (then it is skipped). Returns its value, or
   * undefined when it was skipped or failed with an AttestdError, which is recorded.
   */
  attempt<T>(name: C, needs: readonly C[], run: () => T, detail: (value: T) => string = noDetail): T | undefined {
    const blocked = needs.find((n) => this.status(n) !== 'pass');
    if (blocked !== undefined) {
      this.skip(name, `not run: ${blocked} did not pass`);
      return undefined;
    }
    let value: T;
    try {
      value = run();
    } catch (err) {
      this.failed(name, err);
      if (!(err instanceof AttestdError)) throw err;
      return undefined;
    }
    this.passed(name, detail(value));
    return value;
  }

  skip(name: C, detail: string): void {
    this.checks.push({ name, status: 'skipped', detail });
  }

  status(name: C): CheckStatus | undefined {
    return this.checks.find((c) => c.name === name)?.status;
  }

  private passed(name: C, detail: string): void {
    this.checks.push({ name, status: 'pass', detail });
    this.observer?.(name, true, detail);
  }

  private failed(name: C, err: unknown): void {
    const detail = err instanceof Error ? err.message : String(err);
    if (err instanceof AttestdError) this.checks.push({ name, status: 'fail', code: err.code, detail });
    this.observer?.(name, false, detail);
  }
}

/**
 * The first failure as an AttestdError; when `strict`, else the first skipped check, since a
 * check that could not run has not passed either. It is reported as `skippedCode`: checks are
 * skipped for want of collateral, so by default TDX_COLLATERAL_INVALID.
 */
export function firstProblem(
  checks: readonly CheckRecord[],
  strict: boolean,
  skippedCode: ErrorCode = 'TDX_COLLATERAL_INVALID',
): AttestdError | undefined {
  const failed = checks.find((c) => c.status === 'fail');
  if (failed) return new AttestdError(failed.code as ErrorCode, `${failed.name}: ${failed.detail}`);
  const skipped = strict ? checks.find((c) => c.status === 'skipped') : undefined;
  if (skipped) return new AttestdError(skippedCode, `${skipped.name}: ${skipped.detail}`);
  return undefined;
}

/** The record of one verification step, as the appraisal and the CLI report it. */
import { AttestdError, type ErrorCode } from '../../base/errors.js';

export type CheckStatus = 'pass' | 'fail' | 'skipped';

export interface TdxCheck {
  /** Stable dotted name, e.g. "quote.signature". */
  name: string;
  status: CheckStatus;
  /** Set on failure: an ErrorCode for verification checks, a reason code for policy checks. */
  code?: string;
  detail: string;
}

/** Runs checks in order, recording each; a check whose prerequisites did not pass is skipped. */
export class CheckRunner {
  readonly checks: TdxCheck[] = [];

  run<T>(name: string, needs: readonly string[], fn: () => { value: T; detail: string }): T | undefined {
    const blocked = needs.find((n) => this.status(n) !== 'pass');
    if (blocked !== undefined) {
      this.skip(name, `not run: ${blocked} did not pass`);
      return undefined;
    }
    try {
      const { value, detail } = fn();
      this.checks.push({ name, status: 'pass', detail });
      return value;
    } catch (err) {
      if (!(err instanceof AttestdError)) throw err;
      this.checks.push({ name, status: 'fail', code: err.code, detail: err.message });
      return undefined;
    }
  }

  skip(name: string, detail: string): void {
    this.checks.push({ name, status: 'skipped', detail });
  }

  status(name: string): CheckStatus | undefined {
    return this.checks.find((c) => c.name === name)?.status;
  }
}

/** The first failure as an AttestdError, or, when `strict`, the first skipped check. */
export function firstProblem(checks: readonly TdxCheck[], strict: boolean): AttestdError | undefined {
  const failed = checks.find((c) => c.status === 'fail');
  if (failed) return new AttestdError(failed.code as ErrorCode, `${failed.name}: ${failed.detail}`);
  const skipped = strict ? checks.find((c) => c.status === 'skipped') : undefined;
  if (skipped) return new AttestdError('TDX_COLLATERAL_INVALID', `${skipped.name}: ${skipped.detail}`);
  return undefined;
}

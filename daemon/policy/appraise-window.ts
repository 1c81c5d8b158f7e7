/**
 * PCR appraisal under an update window: values a planned update will produce are accepted,
 * beside the policy's own, until a deadline. Pure like appraisePcrs: the caller passes the
 * time, so the auditor re-running it with the epoch's recorded time reaches the same verdict.
 */
import type { PcrBank } from '../verify/pcr.js';
import { allowedText, pcrReasons } from './appraise.js';
import type { Verdict } from './appraise.js';
import type { Policy } from './types.js';

export interface WindowVerdict extends Verdict {
  /** True when the verdict passes only because of update_window values: mark the epoch. */
  underUpdateWindow: boolean;
}

/**
 * appraisePcrs, where a quoted value that only update_window allows passes while
 * nowMs < until and sets underUpdateWindow; at or after `until` it fails with
 * PCR_UPDATE_WINDOW_EXPIRED naming the window's deadline. A policy without a window gives
 * exactly appraisePcrs' verdict (and underUpdateWindow false). underUpdateWindow is false
 * whenever the verdict fails, so a caller cannot mistake it for a pass.
 */
export function appraisePcrsAt(policy: Policy, quoted: PcrBank[], nowMs: number): WindowVerdict {
  const window = policy.updateWindow;
  let usedWindow = false;
  const reasons = pcrReasons(policy, quoted, (req, found, name) => {
    if (window === undefined) return undefined;
    const extra = window.pcrs.find((w) => w.alg === req.alg && w.index === req.index);
    if (extra === undefined || !extra.allowed.some((a) => a.equals(found))) return undefined;
    if (nowMs < window.untilMs) {
      usedWindow = true;
      return 'accept';
    }
    return {
      code: 'PCR_UPDATE_WINDOW_EXPIRED',
      message: `${name} is ${found.toString('hex')}, allowed only by the update window that ended ${window.until}; policy allows ${allowedText(req.allowed)}`,
    };
  });
  const pass = reasons.length === 0;
  return { pass, reasons, underUpdateWindow: pass && usedWindow };
}

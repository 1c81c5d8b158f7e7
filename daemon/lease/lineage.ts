/**
 * Lineage: a lease derived from another for a process its holder started (DeriveLease). What a
 * derived lease may have is decided here, purely: the parent's rule and intent, at most its
 * scopes and GPUs, one generation deeper than the parent and no deeper than the rule allows.
 * The kernel's word that the child descends from the holder is the API layer's (peer.ts).
 */
import { AttestdError } from '../base/errors.js';
import type { EpochState } from '../appraisal/epoch-state.js';
import { maxDepthOf } from '../policy/lineage.js';
import type { Rule } from '../policy/types.js';

/** Where a derived lease sits: its parent, the acquired lease at the top, and its depth (1 for a child of that one). */
export interface LineageLink {
  parentId: string;
  rootId: string;
  depth: number;
}

/** What a derivation asks for beyond the child: scopes and GPUs (UUIDs or indices), empty for all the parent's. */
export interface DeriveWants {
  scopes: string[];
  gpus: string[];
}

interface ParentTerms {
  id: string;
  scopes: string[];
  gpus: string[];
  lineage?: LineageLink;
}

/** The child's place under `parent`, or LINEAGE_NOT_ALLOWED / LINEAGE_TOO_DEEP under the rule's limit. */
export function childLink(parent: ParentTerms, rule: Rule): LineageLink {
  const depth = (parent.lineage?.depth ?? 0) + 1;
  checkDepth(depth, rule);
  return { parentId: parent.id, rootId: parent.lineage?.rootId ?? parent.id, depth };
}

/** A derived lease of `depth` under `rule`: LINEAGE_NOT_ALLOWED without a lineage, LINEAGE_TOO_DEEP beyond it. */
export function checkDepth(depth: number, rule: Rule): void {
  const max = maxDepthOf(rule);
  if (max === 0) throw new AttestdError('LINEAGE_NOT_ALLOWED', `rule ${rule.name} allows no derived lease`);
  if (depth > max) throw new AttestdError('LINEAGE_TOO_DEEP', `a lease of depth ${depth} is deeper than rule ${rule.name} allows (${max})`);
}

/** The scopes asked for, each one the parent's; all of the parent's when none is asked. */
export function childScopes(parent: ParentTerms, want: readonly string[]): string[] {
  if (want.length === 0) return [...parent.scopes];
  const outside = want.find((s) => !parent.scopes.includes(s));
  if (outside !== undefined) throw new AttestdError('LINEAGE_NOT_SUBSET', `the parent lease has no scope "${outside}"`);
  return [...new Set(want)];
}

/** The GPUs asked for (UUIDs, or indices as the epoch numbers them), each one the parent's; all of the parent's when none is asked. */
export function childGpus(parent: ParentTerms, want: readonly string[], epoch: EpochState): string[] {
  if (want.length === 0) return [...parent.gpus];
  const byIndex = new Map((epoch.gpu?.gpus ?? []).map((g) => [String(g.index), g.uuid]));
  const asked = want.map((w) => byIndex.get(w) ?? w.toLowerCase().replace(/^gpu-/, 'GPU-'));
  const outside = asked.find((u) => !parent.gpus.includes(u));
  if (outside !== undefined) throw new AttestdError('LINEAGE_NOT_SUBSET', `the parent lease does not cover GPU "${outside}"`);
  return [...new Set(asked)];
}

/** The lineage fields of a token or an audit record; none for an acquired lease. */
export function lineageFields(link: LineageLink | undefined): { parentLeaseId?: string; rootLeaseId?: string; depth?: number } {
  return link ? { parentLeaseId: link.parentId, rootLeaseId: link.rootId, depth: link.depth } : {};
}

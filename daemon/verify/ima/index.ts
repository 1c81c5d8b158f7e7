/** IMA runtime measurement list: parse, replay PCR 10, appraise against an allowlist. */
export {
  IMA_MAX_ENTRIES,
  IMA_MAX_LINE_BYTES,
  IMA_MAX_LIST_BYTES,
  formatFileDigest,
  parseImaLines,
  parseImaList,
  type ImaEntry,
  type ImaParseOptions,
  type ImaParsed,
} from './parse.js';
export { fileDigestSize, serialiseTemplate, type ImaTemplateFields, type ImaTemplateName } from './templates.js';
export {
  IMA_PCR,
  bankTemplateHash,
  compareImaPcr10,
  replayImaPcr10,
  verifyImaReplay,
  type ImaReplay,
  type ImaReplayOptions,
  type ImaVerifyReplayOptions,
} from './replay.js';
export {
  BOOT_AGGREGATE_NAME,
  CompiledImaAllowlist,
  evaluateImaAllowlist,
  type ImaAllowlist,
  type ImaAllowlistResult,
} from './allowlist.js';
export { bootAggregateDigest, verifyBootAggregate, type BootAggregateOptions } from './boot-aggregate.js';
export {
  appraiseImaIncrement,
  initialImaState,
  type ImaAppraisalState,
  type ImaIncrement,
  type ImaIncrementInput,
} from './incremental.js';

/** TCG PC Client event logs: parse, decode, replay, compare with a quote. */
export { parseEventLog } from './parse.js';
export { replay, checkAgainstQuoted, compareWithQuoted, resetValue, DEFAULT_REPLAY_PCRS, type CompareOptions } from './replay.js';
export { digestsMatchData } from './binding.js';
export { EV, eventTypeName } from './event-types.js';
export * from './types.js';

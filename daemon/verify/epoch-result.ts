/** Signing context of epoch results; see proto/attestd/audit/v1/audit.proto (Epoch). */
export const EPOCH_RESULT_CONTEXT = Buffer.from('attestd/epoch-result/v1');

/**
 * Worker thread of the audit-log generator: signs lease tokens with the session key, as the
 * lease manager does (daemon/lease/token.ts signToken), so that the 1,000,000-record log's
 * ~750,000 Ed25519 signatures are made on both cores. Ed25519 signatures are deterministic,
 * so which thread or which implementation signs does not change a byte of the log.
 *
 * In: workerData (TokenSetup) once, then one TokenJob per message. Out: one TokenResult per
 * job, every token followed by its 64-byte signature in one transferred buffer.
 */
import { createPrivateKey, sign } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { signToken } from '../../daemon/lease/token.js';
import type { Signer } from '../../daemon/base/signer.js';
import type { attestd } from '../../daemon/gen/proto.js';

export interface TokenSetup {
  /** PKCS#8 DER of the Ed25519 session key. */
  privateKey: Uint8Array;
  publicKey: Uint8Array;
  rule: string;
  scopes: string[];
  policySha256: Uint8Array;
  workloads: attestd.lease.v1.WorkloadIdentity.$Properties[];
}

/** Claims of `count` tokens, column by column. */
export interface TokenJob {
  id: number;
  count: number;
  leaseIds: string[];
  epochs: Float64Array;
  workloads: Uint32Array;
  issuedAtMs: Float64Array;
  expiresAtMs: Float64Array;
  renewals: Uint32Array;
}

export interface TokenResult {
  id: number;
  /** token i followed by its signature, for every i. */
  bytes: Uint8Array;
  tokenLengths: Uint32Array;
}

export const SIGNATURE_BYTES = 64;

function run(setup: TokenSetup): void {
  const key = createPrivateKey({ key: Buffer.from(setup.privateKey), format: 'der', type: 'pkcs8' });
  const publicKey = Buffer.from(setup.publicKey);
  const signer: Signer = { sign: (data) => sign(null, data, key), publicKey: () => publicKey };
  parentPort!.on('message', (job: TokenJob) => {
    const parts: Uint8Array[] = [];
    const tokenLengths = new Uint32Array(job.count);
    let total = 0;
    for (let i = 0; i < job.count; i++) {
      const signed = signToken({
        version: 1, leaseId: job.leaseIds[i]!, epoch: job.epochs[i]!, sessionPublicKey: publicKey, rule: setup.rule,
        policySha256: setup.policySha256, scopes: setup.scopes, workload: setup.workloads[job.workloads[i]!]!,
        issuedAtMs: job.issuedAtMs[i]!, expiresAtMs: job.expiresAtMs[i]!, renewal: job.renewals[i]!,
      }, signer);
      if (signed.signature.length !== SIGNATURE_BYTES) throw new Error('session key made a signature of an unexpected size');
      tokenLengths[i] = signed.token.length;
      parts.push(signed.token, signed.signature);
      total += signed.token.length + SIGNATURE_BYTES;
    }
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      bytes.set(p, at);
      at += p.length;
    }
    const result: TokenResult = { id: job.id, bytes, tokenLengths };
    parentPort!.postMessage(result, [bytes.buffer, tokenLengths.buffer]);
  });
}

if (parentPort) run(workerData as TokenSetup);

/** attestctl verify-result BUNDLE --ca ENROLL-CA.pem: a relying party's check of an attestation result, offline. */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { certificatesOf } from '../verify/ak-certificate.js';
import { ResultFailure, verifyResult } from '../verify/ear/verify-result.js';
import { EXIT } from './exit-codes.js';
import { printJson } from './output.js';

export const VERIFY_RESULT_HELP = `Usage: attestctl verify-result BUNDLE --ca ENROLL-CA.pem [--ek-ca DIR] [--nonce HEX] [--json]

Checks an attestation result (attestctl lease result, or the GetLeaseResult call) on any
machine, with no daemon and no TPM, link by link: the EAR's signature by the session key, its
claims, the nonce (--nonce: the one the relying party sent), the TPM quote binding the session
key and the nonce, the AK certificate to the enrolling CA, and with --ek-ca the EK certificate
to a TPM vendor root. Prints the lease the result speaks for and each submod's status.
Exit codes: 0 verified, 1 unreadable input, 2 usage, 8 a link does not verify (it is named).`;

export interface VerifyResultOptions {
  json: boolean;
  ca?: string | undefined;
  ekCa?: string | undefined;
  nonce?: string | undefined;
}

export async function verifyResultCommand(file: string | undefined, o: VerifyResultOptions): Promise<number> {
  if (!file || !o.ca) {
    process.stderr.write(`attestctl: verify-result needs BUNDLE and --ca ENROLL-CA.pem\n\n${VERIFY_RESULT_HELP}\n`);
    return EXIT.USAGE;
  }
  if (o.nonce !== undefined && !/^(?:[0-9a-fA-F]{2}){8,64}$/.test(o.nonce)) {
    process.stderr.write('attestctl: --nonce takes 8 to 64 bytes in hex\n');
    return EXIT.USAGE;
  }
  let bundle: Buffer;
  let cas;
  let ekCas: Buffer[] | undefined;
  try {
    bundle = await readFile(file);
    cas = certificatesOf(await readFile(o.ca));
    ekCas = o.ekCa === undefined ? undefined : await Promise.all((await readdir(o.ekCa)).map((n) => readFile(join(o.ekCa!, n))));
  } catch (err) {
    process.stderr.write(`attestctl: ${(err as Error).message}\n`);
    return EXIT.FAILURE;
  }
  try {
    const v = await verifyResult(bundle, { cas, ekCas, nonce: o.nonce === undefined ? undefined : Buffer.from(o.nonce, 'hex'), at: new Date() });
    if (o.json) printJson({ verified: true, lease: v.lease, submods: v.statuses, ak_name: v.akName, ek_certificate_sha256: v.ekCertificateSha256 });
    else {
      process.stdout.write(`verified: lease ${v.lease.lease_id} (rule ${v.lease.rule}, expires ${new Date(v.lease.expires_at_ms).toISOString()})\n`);
      for (const [name, status] of Object.entries(v.statuses)) process.stdout.write(`  ${name}: ${status}\n`);
    }
    return EXIT.OK;
  } catch (err) {
    if (!(err instanceof ResultFailure)) throw err;
    if (o.json) printJson({ verified: false, link: err.link, message: err.message });
    else process.stdout.write(`FAILED at ${err.link}: ${err.message}\n`);
    return EXIT.AUDIT_FAILED;
  }
}

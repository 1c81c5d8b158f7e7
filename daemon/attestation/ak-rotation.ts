/**
 * AK rotation at start (`attestd --rotate-ak`), and the settling of one a crash interrupted.
 *
 * A rotation goes: the new key stored beside the old (`ak.key.next`), the AkRotation record
 * made durable in the audit log, the new key renamed over `ak.key`, the pin (`ak.pub`)
 * rewritten. The log is the truth: a crash after the record must end with the new key in
 * place (the log already says the new key is the one trusted from there on), a crash before it
 * with the old. So at every start, before the TPM is opened: a leftover next key that the
 * log's last rotation names, rotated from the stored key, is put in place; any other is
 * removed; and a pin that the log's last rotation moved from, to the stored key, is moved too.
 */
import { join } from 'node:path';
import { attestd } from '../gen/proto.js';
import { AttestdError } from '../base/errors.js';
import { framesOf, readSegments } from '../audit/reader.js';
import type { AuditBody } from '../audit/log.js';
import { decodeStoredAk } from '../evidence/tpm/ak-blob.js';
import type { AkStore } from '../evidence/tpm/ak-store.js';
import type { AkRotationEvidence } from '../evidence/tpm/source.js';
import { AK_PIN_FILE, readPinFile, writePinFile } from './ak-pin.js';

type Log = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

interface RecordedRotation {
  oldPublic: Buffer;
  newPublic: Buffer;
}

/** The last AkRotation in the log folder, or undefined; read only when a rotation is to settle. */
async function lastRotation(auditDir: string): Promise<RecordedRotation | undefined> {
  let last: RecordedRotation | undefined;
  for await (const seg of readSegments(auditDir)) {
    for (const f of framesOf(seg)) {
      if (!('payload' in f)) break;
      let rec: attestd.audit.v1.AuditRecord;
      try {
        rec = attestd.audit.v1.AuditRecord.decode(f.payload);
      } catch {
        continue;
      }
      const r = rec.akRotation;
      if (r) last = { oldPublic: Buffer.from(r.oldAkPublic ?? []), newPublic: Buffer.from(r.newAkPublic ?? []) };
    }
  }
  return last;
}

/** Settles a rotation a crash interrupted (see above); nothing when none was under way. */
export async function settleAkRotation(opts: { stateDir: string; auditDir: string; store: AkStore; log: Log }): Promise<void> {
  const { stateDir, auditDir, store, log } = opts;
  // A stored key that cannot be read is the TPM source's to report (every epoch fails, saying
  // why); nothing is settled against it.
  const storedBytes = await store.read().catch(() => null);
  if (storedBytes === null) return;
  if (storedBytes === undefined) {
    if ((await store.readNext().catch(() => undefined)) !== undefined) {
      await store.removeNext();
      log('warn', 'leftover new attestation key removed: there is no stored key it could replace', { ak_key: `${store.where}.next` });
    }
    return;
  }
  let stored = safeDecode(storedBytes);
  if (stored === undefined) return;
  let recorded: RecordedRotation | undefined | null = null;
  const rotation = async () => (recorded === null ? (recorded = await lastRotation(auditDir)) : recorded);
  const nextBytes = await store.readNext().catch(() => undefined);
  if (nextBytes !== undefined) {
    const next = safeDecode(nextBytes);
    const r = next === undefined ? undefined : await rotation();
    if (next !== undefined && r?.newPublic.equals(next) && r.oldPublic.equals(stored)) {
      await store.commitNext();
      stored = next;
      log('warn', 'attestation key rotation completed at start: the log records it, the key was not yet in place', { ak_key: store.where });
    } else {
      await store.removeNext();
      log('warn', 'leftover new attestation key removed: its rotation was never recorded', { ak_key: `${store.where}.next` });
    }
  }
  const pinFile = join(stateDir, AK_PIN_FILE);
  const pinned = await readPinFile(pinFile).catch(() => undefined);
  if (pinned === undefined || pinned.publicArea.equals(stored)) return;
  const r = await rotation();
  if (r?.oldPublic.equals(pinned.publicArea) && r.newPublic.equals(stored)) {
    await writePinFile(pinFile, stored);
    log('warn', 'attestation key pin moved to the rotated key at start: the log records the rotation', { ak_pin: pinFile });
  }
}

function safeDecode(bytes: Buffer): Buffer | undefined {
  try {
    return decodeStoredAk(bytes).publicArea;
  } catch {
    return undefined;
  }
}

export interface RotationDeps {
  stateDir: string;
  store: AkStore;
  tpm: { rotateAk(record: (r: AkRotationEvidence) => Promise<void>): Promise<AkRotationEvidence> };
  append: (body: AuditBody) => Promise<number>;
  log: Log;
}

/**
 * `--rotate-ak`: the stored AK certifies a new one, the rotation is recorded, the new key and
 * the pin take the old one's place. Without a stored key there is nothing to rotate. A stored
 * key that is not the pinned one is not rotated (that would move the pin to a key the pinned
 * one never vouched for): AK_ROTATION_INVALID, and the daemon does not start.
 */
export async function rotateAkAtStart(deps: RotationDeps): Promise<void> {
  const { stateDir, store, tpm, append, log } = deps;
  const bytes = await store.read();
  if (bytes === undefined) {
    log('info', 'no stored attestation key yet: nothing to rotate (--rotate-ak)', { ak_key: store.where });
    return;
  }
  const pinFile = join(stateDir, AK_PIN_FILE);
  const pinned = await readPinFile(pinFile);
  if (pinned !== undefined && !pinned.publicArea.equals(decodeStoredAk(bytes).publicArea)) {
    throw new AttestdError('AK_ROTATION_INVALID', `the stored attestation key is not the one pinned in ${pinFile}; it is not rotated`);
  }
  const r = await tpm.rotateAk(async (rotation) => {
    await append({ akRotation: { oldAkPublic: rotation.oldPublic, newAkPublic: rotation.newPublic,
      certifyInfo: rotation.certifyInfo, signature: rotation.signature } });
  });
  await writePinFile(pinFile, r.newPublic);
  log('info', 'attestation key rotated: the old key certified the new one, recorded in the audit log', { ak_key: store.where, ak_pin: pinFile });
}

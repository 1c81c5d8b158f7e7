/**
 * The offline verifier on logs written by a live daemon: a log with two sessions verifies
 * with only the AK's public key, also after `audit export`; every tamper class is caught and
 * the failing record is named.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { startSwtpm, type Swtpm } from '../helpers/swtpm.js';
import { attestctl, startDaemon, testPolicy, type RunningDaemon } from '../helpers/daemon.js';
import { AttestdClient } from '../../daemon/client/client.js';
import { akKey, decode, encode, payloads, verifyDir, writeLog } from '../helpers/audit-log.js';
import { CHECKPOINT_FILE } from '../../daemon/audit/segments.js';

let tpm: Swtpm;
let other: Swtpm;
let logDir: string;
let otherLog: string;
let ak: KeyObject;
let akPem: string;
const keep: string[] = [];

/** Runs a daemon session that grants, renews, watches and denies, then stops it. */
async function session(t: Swtpm, stateDir?: string): Promise<RunningDaemon> {
  const d = await startDaemon({ tcti: t.tcti, stateDir, policy: testPolicy({ extra: '' }) });
  const c = await AttestdClient.connect(d.socket);
  for (let i = 0; i < 5; i++) {
    const l = (await c.call({ acquireLease: {} })).acquireLease!.lease!;
    await c.call({ renewLease: { leaseId: l.leaseId } });
  }
  await expect(c.call({ acquireLease: { rule: 'nope' } })).rejects.toMatchObject({ code: 'NO_MATCHING_RULE' });
  await new Promise((r) => setTimeout(r, 1200)); // a checkpoint and another epoch
  c.close();
  return d;
}

beforeAll(async () => {
  tpm = await startSwtpm();
  other = await startSwtpm();
  // Two sessions on one state folder; stopped with SIGTERM so their folders stay.
  const s1 = await session(tpm);
  akPem = (await s1.status()).akPublicPem;
  ak = akKey(akPem);
  s1.proc.kill('SIGTERM');
  await s1.exited;
  const s2 = await session(tpm, s1.stateDir);
  s2.proc.kill('SIGTERM');
  await s2.exited;
  logDir = join(s1.stateDir, 'audit');
  const o = await session(other);
  o.proc.kill('SIGTERM');
  await o.exited;
  otherLog = join(o.stateDir, 'audit');
  keep.push(s1.dir, s2.dir, o.dir);
}, 60_000);

afterAll(async () => {
  for (const d of keep) await rm(d, { recursive: true, force: true });
  await tpm?.dispose();
  await other?.dispose();
});

/** Index of the record holding byte `offset` of the single open segment written by writeLog. */
function recordAt(list: Buffer[], offset: number): number {
  let pos = 0;
  for (let i = 0; i < list.length; i++) {
    pos += 8 + list[i]!.length;
    if (offset < pos) return i;
  }
  return list.length;
}

describe('offline audit verification', () => {
  it('verifies a two-session log end to end with only the AK public key', async () => {
    const r = await verifyDir(logDir, ak);
    if (!r.ok) throw r.failure;
    expect(r.summary.sessions).toBeGreaterThanOrEqual(2);
    expect(r.summary.grants).toBeGreaterThanOrEqual(10);
    expect(r.summary.renewals).toBeGreaterThanOrEqual(10);
    expect(r.summary.denials).toBeGreaterThanOrEqual(2);
    expect(r.summary.checkpoints).toBeGreaterThanOrEqual(2);
  });

  it('attestctl audit verify and export agree, and another AK is refused', async () => {
    const pem = join(keep[0]!, 'ak.pem');
    await writeFile(pem, akPem);
    const ok = await attestctl(['audit', 'verify', logDir, '--ak', pem, '--json']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).verified).toBe(true);
    const dest = join(keep[0]!, 'export');
    expect((await attestctl(['audit', 'export', dest, '--dir', logDir])).code).toBe(0);
    expect((await attestctl(['audit', 'verify', dest, '--ak', pem])).code).toBe(0);
    const otherPem = join(keep[0]!, 'other.pem');
    await writeFile(otherPem, generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }));
    const bad = await attestctl(['audit', 'verify', logDir, '--ak', otherPem, '--json']);
    expect(bad.code).toBe(8);
    expect(JSON.parse(bad.stdout)).toMatchObject({ verified: false, check: 'session-chain', seq: 0 });
  });

  it('proves inclusion and consistency, and check-inclusion verifies what prove printed', async () => {
    const inc = JSON.parse((await attestctl(['audit', 'prove', 'inclusion', '3', '--dir', logDir, '--json'])).stdout);
    const ok = await attestctl(['audit', 'check-inclusion', '--leaf-hash', inc.leaf_hash, '--index', '3', '--size', String(inc.size),
      '--root', Buffer.from(inc.root, 'hex').toString('base64'), '--proof', inc.proof.join(',')]);
    expect(ok.code).toBe(0);
    const wrong = await attestctl(['audit', 'check-inclusion', '--leaf-hash', inc.leaf_hash, '--index', '4', '--size', String(inc.size),
      '--root', inc.root, '--proof', inc.proof.join(',')]);
    expect(wrong.code).toBe(8);
    const cons = await attestctl(['audit', 'prove', 'consistency', '5', String(inc.size), '--dir', logDir, '--json']);
    expect(cons.code).toBe(0);
    expect(JSON.parse(cons.stdout).proof.length).toBeGreaterThan(0);
  });

  describe('tampering', () => {
    let list: Buffer[];
    let published: string;
    beforeAll(async () => {
      list = await payloads(logDir);
      published = await readFile(join(logDir, CHECKPOINT_FILE), 'utf8');
    });

    const expectFailure = async (changed: Uint8Array[], seq: number, check?: string, cp = published) => {
      const dir = await writeLog(changed, cp);
      keep.push(dir);
      const r = await verifyDir(dir, ak);
      expect(r.ok, 'tampered log verified').toBe(false);
      if (!r.ok) {
        expect(r.failure.where.seq, r.failure.message).toBe(seq);
        if (check) expect(r.failure.check).toBe(check);
      }
    };

    it('the untampered copy verifies', async () => {
      const dir = await writeLog(list, published);
      keep.push(dir);
      expect((await verifyDir(dir, ak)).ok).toBe(true);
    });

    it('catches a flipped byte anywhere, naming the record that holds it', async () => {
      const whole = Buffer.concat(list.map((p) => Buffer.concat([Buffer.alloc(8), p])));
      for (let i = 0; i < 40; i++) {
        const offset = Math.floor(((i + 0.5) / 40) * whole.length);
        const idx = recordAt(list, offset);
        const dir = await writeLog(list, published);
        keep.push(dir);
        const seg = join(dir, '00000000000000000000.open');
        const bytes = await readFile(seg);
        bytes[offset] = bytes[offset]! ^ 0x40;
        await writeFile(seg, bytes);
        const r = await verifyDir(dir, ak);
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.failure.where.seq).toBe(idx);
      }
    });

    it('catches a dropped, duplicated or reordered record', async () => {
      const k = 7;
      await expectFailure([...list.slice(0, k), ...list.slice(k + 1)], k, 'sequence');
      await expectFailure([...list.slice(0, k + 1), list[k]!, ...list.slice(k + 1)], k + 1, 'sequence');
      await expectFailure([...list.slice(0, k), list[k + 1]!, list[k]!, ...list.slice(k + 2)], k, 'sequence');
    });

    it('catches truncation below the published checkpoint', async () => {
      const cut = list.length - 3;
      const dir = await writeLog(list.slice(0, cut), published);
      keep.push(dir);
      const r = await verifyDir(dir, ak);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.failure.check).toBe('checkpoint-root');
    });

    it('catches a record changed and re-framed with a valid CRC', async () => {
      const idx = list.findIndex((p) => decode(p).leaseDecision?.kind === 1);
      const rec = decode(list[idx]!);
      rec.leaseDecision!.rule = 'admin';
      const changed = [...list];
      changed[idx] = Buffer.from(encode(rec));
      // The record itself still reads; the next record that names a root (a checkpoint, or an
      // epoch binding the log root) no longer matches.
      const next = list.findIndex((p, i) => i > idx && (decode(p).checkpoint || decode(p).epoch));
      await expectFailure(changed, next, 'checkpoint-root');
    });

    it('catches a checkpoint moved to another place', async () => {
      const cps = list.map((p, i) => [i, decode(p)] as const).filter(([, r]) => r.checkpoint);
      // Two checkpoints of the same session, so the signature still verifies.
      const [a, ra] = cps[0]!;
      const [b, rb] = cps.find(([i]) => i > a && !list.slice(a, i).some((p) => decode(p).sessionStart))!;
      const changed = [...list];
      changed[b] = Buffer.from(encode({ ...rb, checkpoint: { note: ra.checkpoint!.note } }));
      await expectFailure(changed, b, 'checkpoint-root');
      expect(a).toBeLessThan(b);
    });

    it('catches a replaced session key', async () => {
      const idx = list.findIndex((p, i) => i > 0 && decode(p).sessionStart);
      const rec = decode(list[idx]!);
      rec.sessionStart!.sessionPublicKey = Buffer.from(generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x!, 'base64url');
      const changed = [...list];
      changed[idx] = Buffer.from(encode(rec));
      const dir = await writeLog(changed, published);
      keep.push(dir);
      const r = await verifyDir(dir, ak);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.failure.where.seq).toBeGreaterThan(idx);
        expect(['epoch-signature', 'checkpoint-signature', 'lease-token']).toContain(r.failure.check);
      }
    });

    it('catches two hosts\' logs spliced together', async () => {
      const theirs = await payloads(otherLog);
      const spliced = [...list, ...theirs].map((p, i) => Buffer.from(encode({ ...decode(p), seq: i })));
      await expectFailure(spliced, list.length, 'session-chain', undefined as unknown as string);
    });

    it('catches an epoch whose recorded verdict the evidence does not support', async () => {
      const idx = list.findIndex((p) => decode(p).epoch);
      const rec = decode(list[idx]!);
      // Re-signing is impossible without the session key; so flip the verdict and expect the signature check.
      const result = Buffer.from(rec.epoch!.result!);
      result[result.length - 1] = result[result.length - 1]! ^ 1;
      rec.epoch!.result = result;
      const changed = [...list];
      changed[idx] = Buffer.from(encode(rec));
      await expectFailure(changed, idx, 'epoch-signature');
    });
  });
});

/**
 * Daemons killed with SIGKILL on a TPM without a resource manager: each leaves its AK loaded,
 * three of them fill swtpm's transient object slots, and the next session must still start.
 *
 * The killed sessions are real processes running the production Tpm class. They load it
 * from a private build (tsc, types not checked) in a temporary directory, so neither dist/
 * nor a test-only way of dropping a session without flushing is needed.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Tpm } from '../../daemon/evidence/tpm/tpm.js';
import { verifyQuote } from '../../daemon/verify/quote.js';
import { parseTpmtPublic } from '../../daemon/verify/tpm-public.js';
import { startSwtpm, tpm2, type Swtpm } from '../helpers/swtpm.js';

const ROOT = join(import.meta.dirname, '..', '..');
/** swtpm's transient object slots (libtpms MAX_LOADED_OBJECTS). */
const SLOTS = 3;

/** Opens the TPM, creates the AK, prints its public area and waits to be killed. */
const SESSION = `
const [, url, tcti] = process.argv;
const { Tpm } = await import(url);
const tpm = await Tpm.open(tcti);
const ak = await tpm.attestationKeyPublic();
process.stdout.write(ak.toString('hex') + '\\n');
setInterval(() => undefined, 60_000);
`;

async function buildTpmModule(): Promise<{ dir: string; url: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'attestd-tpm-leak-'));
  await writeFile(join(dir, 'package.json'), '{"type":"module"}\n');
  // Bare imports (koffi) resolve through the project's own node_modules.
  await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  await promisify(execFile)(
    process.execPath,
    [
      join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
      join(ROOT, 'daemon', 'evidence', 'tpm', 'tpm.ts'),
      '--outDir', dir, '--rootDir', ROOT,
      '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022',
      '--types', 'node', '--skipLibCheck', '--noCheck',
    ],
    { cwd: ROOT, timeout: 60_000 },
  );
  return { dir, url: pathToFileURL(join(dir, 'daemon', 'evidence', 'tpm', 'tpm.js')).href };
}

/** Runs one session in a child process until it has its AK, then SIGKILLs it. */
function crashSession(url: string, tcti: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', SESSION, url, tcti], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    const timer = setTimeout(() => c.kill('SIGKILL'), 20_000);
    c.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) c.kill('SIGKILL');
    });
    c.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    c.once('error', reject);
    c.once('exit', (_code, signal) => {
      clearTimeout(timer);
      const line = out.split('\n')[0] ?? '';
      if (signal === 'SIGKILL' && /^[0-9a-f]+$/.test(line)) resolve(Buffer.from(line, 'hex'));
      else reject(new Error(`session did not get its AK (${signal ?? 'exited'}): ${err}`));
    });
  });
}

async function transients(tcti: string): Promise<string[]> {
  const r = await tpm2(['getcap', 'handles-transient'], tcti);
  if (r.code !== 0) throw new Error(`tpm2_getcap exited ${r.code}: ${r.stderr}`);
  return [...r.stdout.toString().matchAll(/0x[0-9a-f]{8}/gi)].map((m) => m[0].toLowerCase());
}

describe('Tpm after sessions killed without close()', () => {
  let sw: Swtpm;
  let build: { dir: string; url: string };

  beforeAll(async () => {
    build = await buildTpmModule();
  }, 90_000);

  afterAll(async () => {
    if (build !== undefined) await rm(build.dir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    sw = await startSwtpm();
  });

  afterEach(async () => {
    await sw?.dispose();
  });

  it('flushes the AKs they left on swtpm, starts, quotes, and leaves only its own AK', async () => {
    const leaked: Buffer[] = [];
    for (let i = 1; i <= SLOTS; i++) {
      leaked.push(await crashSession(build.url, sw.tcti));
      expect(await transients(sw.tcti)).toHaveLength(i);
    }
    // The TPM is full: an independent client cannot create an object either.
    const full = await tpm2(['createprimary', '-C', 'e', '-c', join(sw.dir, 'x.ctx')], sw.tcti);
    expect(full.code).not.toBe(0);
    expect(full.stderr).toMatch(/0x902|object memory/i);

    const tpm = await Tpm.open(sw.tcti);
    try {
      const ak = await tpm.attestationKeyPublic();
      expect(leaked.every((l) => l.equals(ak))).toBe(true);
      const mine = await transients(sw.tcti);
      expect(mine).toHaveLength(1);

      const nonce = Buffer.from('after three crashes');
      const q = await tpm.quote(nonce, [{ alg: 'sha256', pcrs: [0, 7] }]);
      const v = verifyQuote({ attest: q.attest, signature: q.signature, pcrs: q.banks, ak: parseTpmtPublic(ak), expectedNonce: nonce });
      expect(v.banks).toHaveLength(1);
      expect(await transients(sw.tcti)).toEqual(mine);
    } finally {
      await tpm.close();
    }
    expect(await transients(sw.tcti)).toEqual([]);
  }, 90_000);

  it('after four crashes of fixed sessions, holds only the last one and its own AK', async () => {
    // The fourth session finds the TPM full and flushes what the first three left.
    for (let i = 1; i <= SLOTS + 1; i++) {
      await crashSession(build.url, sw.tcti);
      expect(await transients(sw.tcti)).toHaveLength(i <= SLOTS ? i : 1);
    }
    const left = await transients(sw.tcti);

    const tpm = await Tpm.open(sw.tcti);
    try {
      const ak = parseTpmtPublic(await tpm.attestationKeyPublic());
      const q = await tpm.quote(Buffer.from('n'), [{ alg: 'sha256', pcrs: [0] }]);
      expect(verifyQuote({ attest: q.attest, signature: q.signature, pcrs: q.banks, ak, expectedNonce: Buffer.from('n') }).banks).toHaveLength(1);
      const now = await transients(sw.tcti);
      expect(now).toHaveLength(2);
      expect(now).toEqual(expect.arrayContaining(left));
    } finally {
      await tpm.close();
    }
    expect(await transients(sw.tcti)).toEqual(left);
  }, 90_000);
});

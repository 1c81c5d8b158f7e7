/**
 * Daemons killed with SIGKILL on a TPM without a resource manager: each leaves its AK loaded,
 * and once the leftovers leave no room for the storage root key and the AK beside it, the
 * next session must still start. Every session here loads the same stored AK.
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
import { fileAkStore } from '../../daemon/evidence/tpm/ak-store.js';
import { Tpm } from '../../daemon/evidence/tpm/tpm.js';
import { verifyQuote } from '../../daemon/verify/quote.js';
import { parseTpmtPublic } from '../../daemon/verify/tpm-public.js';
import { startSwtpm, tpm2, type Swtpm } from '../helpers/swtpm.js';

const ROOT = join(import.meta.dirname, '..', '..');
/** swtpm's transient object slots (libtpms MAX_LOADED_OBJECTS). */
const SLOTS = 3;

/** Opens the TPM, loads the stored AK, prints its public area and waits to be killed. */
const SESSION = `
const [, url, storeUrl, tcti, keyFile] = process.argv;
const { Tpm } = await import(url);
const { fileAkStore } = await import(storeUrl);
const tpm = await Tpm.open(tcti, fileAkStore(keyFile));
const ak = await tpm.attestationKeyPublic();
process.stdout.write(ak.toString('hex') + '\\n');
setInterval(() => undefined, 60_000);
`;

async function buildTpmModule(): Promise<{ dir: string; url: string; storeUrl: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'attestd-tpm-leak-'));
  await writeFile(join(dir, 'package.json'), '{"type":"module"}\n');
  // Bare imports (koffi) resolve through the project's own node_modules.
  await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  await promisify(execFile)(
    process.execPath,
    [
      join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
      join(ROOT, 'daemon', 'evidence', 'tpm', 'tpm.ts'),
      join(ROOT, 'daemon', 'evidence', 'tpm', 'ak-store.ts'),
      '--outDir', dir, '--rootDir', ROOT,
      '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022',
      '--types', 'node', '--skipLibCheck', '--noCheck',
    ],
    { cwd: ROOT, timeout: 60_000 },
  );
  const url = (name: string) => pathToFileURL(join(dir, 'daemon', 'evidence', 'tpm', name)).href;
  return { dir, url: url('tpm.js'), storeUrl: url('ak-store.js') };
}

/** Runs one session in a child process until it has its AK, then SIGKILLs it. */
function crashSession(build: { url: string; storeUrl: string }, tcti: string, keyFile: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', SESSION, build.url, build.storeUrl, tcti, keyFile], {
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
  let build: { dir: string; url: string; storeUrl: string };
  const keyFile = () => join(sw.dir, 'ak.key');

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
    for (let i = 1; i <= SLOTS - 1; i++) {
      leaked.push(await crashSession(build, sw.tcti, keyFile()));
      expect(await transients(sw.tcti)).toHaveLength(i);
    }
    // One slot left of three: room for the storage root key, none for the AK beside it.
    expect(await transients(sw.tcti)).toHaveLength(SLOTS - 1);

    const tpm = await Tpm.open(sw.tcti, fileAkStore(keyFile()));
    try {
      const ak = await tpm.attestationKeyPublic();
      expect(leaked.every((l) => l.equals(ak))).toBe(true);
      const mine = await transients(sw.tcti);
      expect(mine).toHaveLength(1);

      const nonce = Buffer.from('after the crashes');
      const q = await tpm.quote(nonce, [{ alg: 'sha256', pcrs: [0, 7] }]);
      const v = verifyQuote({ attest: q.attest, signature: q.signature, pcrs: q.banks, ak: parseTpmtPublic(ak), expectedNonce: nonce });
      expect(v.banks).toHaveLength(1);
      expect(await transients(sw.tcti)).toEqual(mine);
    } finally {
      await tpm.close();
    }
    expect(await transients(sw.tcti)).toEqual([]);
  }, 90_000);

  it('after crashes of fixed sessions, holds only what the last one left and its own AK', async () => {
    // The third session finds no room for its AK beside the storage root key and flushes what the first two left.
    const counts: number[] = [];
    for (let i = 1; i <= SLOTS; i++) {
      await crashSession(build, sw.tcti, keyFile());
      counts.push((await transients(sw.tcti)).length);
    }
    expect(counts).toEqual([1, 2, 1]);
    const left = await transients(sw.tcti);

    const tpm = await Tpm.open(sw.tcti, fileAkStore(keyFile()));
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

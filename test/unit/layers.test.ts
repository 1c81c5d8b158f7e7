/**
 * The layer rules (.dependency-cruiser.cjs) hold for the tree, and they bite: a scratch tree
 * with one wrong import of each kind is refused, each by the rule meant for it.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const DEPCRUISE = join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');

interface Violation { rule: { name: string }; from: string; to: string }

async function cruise(cwd: string): Promise<Violation[]> {
  const { stdout } = await run(process.execPath, [DEPCRUISE, 'daemon', '--config', '.dependency-cruiser.cjs', '--output-type', 'json'],
    { cwd, maxBuffer: 64 * 1024 * 1024 });
  return (JSON.parse(stdout) as { summary: { violations: Violation[] } }).summary.violations;
}

const BAD: Record<string, string> = {
  // Pure verification code reading a file.
  'daemon/verify/reads-file.ts': "import { readFileSync } from 'node:fs';\nexport const read = readFileSync;\n",
  // Pure policy code reaching for FFI.
  'daemon/policy/ffi.ts': "import koffi from 'koffi';\nexport const k = koffi;\n",
  // Evidence reaching up into leases.
  'daemon/evidence/up.ts': "import { grant } from '../lease/grant.js';\nexport const g = grant;\n",
  // Leases reaching down into collection.
  'daemon/lease/grant.ts': "import { probe } from '../evidence/probe.js';\nexport const grant = probe;\n",
  'daemon/evidence/probe.ts': 'export const probe = 1;\n',
  // A circle inside one layer.
  'daemon/appraisal/a.ts': "import { b } from './b.js';\nexport const a = b;\n",
  'daemon/appraisal/b.ts': "import type { a } from './a.js';\nexport const b = 1 as unknown as typeof a;\n",
  // The addon loaded from somewhere other than daemon/native.ts.
  'daemon/api/addon.ts': "import addon from '../../build/Release/attestd_native.node';\nexport const n = addon;\n",
  'build/Release/attestd_native.node': '',
};

describe('import layers', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'attestd-layers-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('the tree has no import that runs against the layers, and no circle', async () => {
    expect(await cruise(ROOT)).toEqual([]);
  }, 60_000);

  it('refuses each kind of wrong import, naming the rule', async () => {
    copyFileSync(join(ROOT, '.dependency-cruiser.cjs'), join(scratch, '.dependency-cruiser.cjs'));
    writeFileSync(join(scratch, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', allowJs: true } }));
    for (const [path, text] of Object.entries(BAD)) {
      mkdirSync(dirname(join(scratch, path)), { recursive: true });
      writeFileSync(join(scratch, path), text);
    }
    const found = (await cruise(scratch)).map((v) => `${v.rule.name} ${v.from}`);
    expect(found).toEqual(expect.arrayContaining([
      'pure-verify daemon/verify/reads-file.ts',
      'pure-policy daemon/policy/ffi.ts',
      'layer-evidence daemon/evidence/up.ts',
      'layer-lease daemon/lease/grant.ts',
      'no-circular daemon/appraisal/a.ts',
      'native-addon-only-in-native-ts daemon/api/addon.ts',
    ]));
  }, 60_000);

  it('only daemon/native.ts names the compiled addon', () => {
    const files: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(d, e.name));
        else if (/\.(ts|js)$/.test(e.name)) files.push(join(d, e.name));
      }
    };
    walk(join(ROOT, 'daemon'));
    const naming = files.filter((f) => /attestd_native|process\.dlopen/.test(readFileSync(f, 'utf8')));
    expect(naming.map((f) => f.slice(ROOT.length + 1))).toEqual(['daemon/native.ts']);
  });
});

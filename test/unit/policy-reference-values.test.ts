import { describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePolicy } from '../../daemon/policy/parse.js';
import { foldReferences, parseReferenceValues, referencedFiles } from '../../daemon/policy/reference-values.js';
import { loadPolicyFile } from '../../daemon/config/policy-file.js';
import { A64, B64, Z64, v2With } from './policy-v2-helpers.js';

const withFrom = (from: string, allow = '') => v2With({ 15: `      gpus: all\n    intent: { artifacts: { ${allow}from: "${from}" } }` });

describe('reference-value files of intent constraints', () => {
  it('parses sha256sum lines, skipping comments and blank lines, and names the line of a bad one', () => {
    expect(parseReferenceValues(Buffer.from(`# c\n\n${A64.toUpperCase()}  model.bin\n${B64} *cfg.json\r\n${Z64}\n`), 'r')).toEqual([A64, B64, Z64]);
    expect(() => parseReferenceValues(Buffer.from(`${A64}\nnot a digest\n`), 'r.txt'))
      .toThrow(expect.objectContaining({ code: 'POLICY_INVALID', problems: [expect.objectContaining({ file: 'r.txt', line: 2 })] }));
  });

  it('folds the file digests into the rule beside its inline ones; without the file nothing is allowed', () => {
    const loaded = parsePolicy(withFrom('refs.txt', `allow: ["${A64}"], `), 'p.yaml');
    expect(referencedFiles(loaded)).toEqual(['refs.txt']);
    expect(loaded.policy.rules[0]!.intent!.artifacts).toEqual([A64]);
    const folded = foldReferences(loaded, [{ file: 'refs.txt', bytes: Buffer.from(`${B64}  w\n`) }]);
    expect(folded.policy.rules[0]!.intent!.artifacts).toEqual([A64, B64]);
    expect(folded.digest).toEqual(loaded.digest);
    expect(() => foldReferences(loaded, [])).toThrow(/was not read/);
    expect(() => foldReferences(loaded, [{ file: 'other.txt', bytes: Buffer.from('') }])).toThrow(/not named/);
  });

  it('loadPolicyFile reads the file relative to the policy, and refuses a missing or oversized one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'attestd-refs-'));
    try {
      await writeFile(join(dir, 'p.yaml'), withFrom('refs.txt'));
      await expect(loadPolicyFile(join(dir, 'p.yaml'))).rejects.toMatchObject({ code: 'POLICY_UNREADABLE' });
      await writeFile(join(dir, 'refs.txt'), `${B64}  w\n`);
      const p = await loadPolicyFile(join(dir, 'p.yaml'));
      expect(p.policy.rules[0]!.intent!.artifacts).toEqual([B64]);
      expect(p.references).toEqual([{ file: 'refs.txt', bytes: Buffer.from(`${B64}  w\n`) }]);
      await writeFile(join(dir, 'refs.txt'), Buffer.alloc(1024 * 1024 + 1, 0x41));
      await expect(loadPolicyFile(join(dir, 'p.yaml'))).rejects.toMatchObject({ code: 'POLICY_UNREADABLE' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

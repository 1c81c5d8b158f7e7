import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

describe('generated protobuf code', () => {
  it('is exactly what scripts/proto-gen.mjs makes from proto/ (regenerate with npm run proto:gen)', () => {
    const out = mkdtempSync(join(tmpdir(), 'attestd-proto-'));
    try {
      execFileSync(process.execPath, ['scripts/proto-gen.mjs', out]);
      for (const f of ['proto.js', 'proto.d.ts']) {
        expect(readFileSync(join(out, f), 'utf8'), `daemon/gen/${f} drifted from proto/`).toBe(readFileSync(join('daemon/gen', f), 'utf8'));
      }
      expect(readFileSync('daemon/gen/proto.js', 'utf8').split('\n')[0]).toContain('DO NOT EDIT');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

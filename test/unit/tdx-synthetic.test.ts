// The TDX passing path with a minted Intel PKI (tdx-mint.ts): a quote over the epoch binding
// verifies end to end under the configured test root, and only under it.
import { describe, it, expect } from 'vitest';
import { randomBytes } from 'node:crypto';
import { verifyCvmEvidence } from '../../daemon/verify/cvm/verify.js';
import { appraiseTdxQuote } from '../../daemon/verify/tdx/verify.js';
import { rootDigests } from '../../daemon/verify/cvm/trust-roots.js';
import { mintIntelPki } from './tdx-mint.js';

const pki = mintIntelPki();
const at = new Date();
const roots = { intel: [pki.root] };
const data = (binding: Buffer) => Buffer.concat([binding, Buffer.alloc(32)]);

describe('TDX quotes under a configured test root', () => {
  it('a minted quote over the binding passes every check, UpToDate', () => {
    const binding = randomBytes(32);
    const quote = pki.quote(data(binding));
    const a = appraiseTdxQuote(quote, pki.collateral, { at, trustedRootSpkis: rootDigests(roots, 'intel') });
    expect(a.checks.filter((c) => c.status !== 'pass'), JSON.stringify(a.checks)).toEqual([]);
    const v = verifyCvmEvidence({ kind: 'tdx', report: quote, collateral: pki.collateral, binding, at, roots });
    expect(v, JSON.stringify(v)).toMatchObject({ ok: true, facts: { kind: 'tdx', tdx: { tcbStatus: 'UpToDate' } } });
  });

  it('is refused with the pinned Intel root, for another binding, and when a signed byte changes', () => {
    const binding = randomBytes(32);
    const quote = pki.quote(data(binding));
    expect(verifyCvmEvidence({ kind: 'tdx', report: quote, collateral: pki.collateral, binding, at }))
      .toMatchObject({ ok: false, reason: { code: 'TDX_CERT_CHAIN_INVALID' } });
    expect(verifyCvmEvidence({ kind: 'tdx', report: quote, collateral: pki.collateral, binding: randomBytes(32), at, roots }))
      .toMatchObject({ ok: false, reason: { code: 'CVM_BINDING_MISMATCH' } });
    const bad = Buffer.from(quote);
    bad[48 + 6 + 200]! ^= 1;
    expect(verifyCvmEvidence({ kind: 'tdx', report: bad, collateral: pki.collateral, binding, at, roots }))
      .toMatchObject({ ok: false, reason: { code: 'TDX_SIGNATURE_INVALID' } });
  });
});

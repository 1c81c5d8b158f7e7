import { describe, expect, it } from 'vitest';
import { appraisePcrs, requiredSelections } from '../../daemon/policy/appraise.js';
import { appraiseCvm } from '../../daemon/policy/appraise-cvm.js';
import { appraiseGpu, gpuReasonsByUuid } from '../../daemon/policy/appraise-gpu.js';
import { appraiseIma } from '../../daemon/policy/appraise-ima.js';
import { appraisePcrsAt } from '../../daemon/policy/appraise-window.js';
import { resolveRuleGpus } from '../../daemon/policy/gpu-scope.js';
import { parsePolicy } from '../../daemon/policy/parse.js';
import type { CvmPolicy, GpuPolicy, ImaPolicy, PcrBank, Rule } from '../../daemon/policy/types.js';
import type { GpuDevice, GpuMeasurement } from '../../daemon/verify/gpu/measurement.js';
import { noGpuMeasurement } from '../../daemon/verify/gpu/measurement.js';
import { parseImaList } from '../../daemon/verify/ima/parse.js';
import { verifySnpReport } from '../../daemon/verify/snp/verify.js';
import { parseTdxQuote } from '../../daemon/verify/tdx/quote.js';
import { imaFixture, violationLine } from './ima-helpers.js';
import { inputFor, validSamples } from './snp-helpers.js';
import { tdxFixture } from './tdx-helpers.js';
import { A64, GPU0, GPU1, Z64, v2With } from './policy-v2-helpers.js';

const policy = parsePolicy(v2With(), 'p.yaml').policy;
const UNTIL = Date.UTC(2027, 0, 31);
const sha256 = (values: [number, string][]): PcrBank[] => [{ alg: 'sha256', values: new Map(values.map(([i, h]) => [i, Buffer.from(h, 'hex')])) }];

describe('appraisePcrsAt: the update window', () => {
  it('a value allowed by the policy passes, not marked', () => {
    expect(appraisePcrsAt(policy, sha256([[4, Z64]]), UNTIL - 1)).toEqual({ pass: true, reasons: [], underUpdateWindow: false });
  });

  it('a value only the window allows passes before until, marked', () => {
    expect(appraisePcrsAt(policy, sha256([[4, A64]]), UNTIL - 1)).toEqual({ pass: true, reasons: [], underUpdateWindow: true });
  });

  it('from until on, it fails with a reason naming the window', () => {
    for (const now of [UNTIL, UNTIL + 86_400_000]) {
      const v = appraisePcrsAt(policy, sha256([[4, A64]]), now);
      expect(v).toEqual({
        pass: false,
        underUpdateWindow: false,
        reasons: [{ code: 'PCR_UPDATE_WINDOW_EXPIRED', message: `PCR sha256:4 is ${A64}, allowed only by the update window that ended 2027-01-31T00:00:00Z; policy allows ${Z64}` }],
      });
    }
  });

  it('a value neither allows is the usual mismatch, and appraisePcrs ignores the window', () => {
    const other = 'ee'.repeat(32);
    const v = appraisePcrsAt(policy, sha256([[4, other]]), UNTIL - 1);
    expect(v.reasons).toEqual([{ code: 'PCR_MISMATCH', message: `PCR sha256:4 is ${other}, policy allows ${Z64}` }]);
    expect(v.underUpdateWindow).toBe(false);
    expect(appraisePcrs(policy, sha256([[4, A64]])).reasons.map((r) => r.code)).toEqual(['PCR_MISMATCH']);
  });

  it('a failing verdict is never marked, even when the window helped one PCR', () => {
    const two = parsePolicy(v2With({ 7: `    4: "${Z64}"\n    5: "${Z64}"` }), 'p.yaml').policy;
    const v = appraisePcrsAt(two, sha256([[4, A64], [5, A64]]), UNTIL - 1);
    expect(v.pass).toBe(false);
    expect(v.underUpdateWindow).toBe(false);
    expect(v.reasons.map((r) => r.code)).toEqual(['PCR_MISMATCH']);
  });

  it('without a window it is appraisePcrs', () => {
    const v1 = parsePolicy(v2With({ 16: null, 17: null, 18: null, 19: null, 20: null }), 'p.yaml').policy;
    for (const value of [Z64, A64]) {
      const { underUpdateWindow, ...verdict } = appraisePcrsAt(v1, sha256([[4, value]]), UNTIL - 1);
      expect(verdict).toEqual(appraisePcrs(v1, sha256([[4, value]])));
      expect(underUpdateWindow).toBe(false);
    }
  });
});

describe('requiredSelections with boot and ima sections', () => {
  it('adds the boot PCRs and PCR 10 in their banks', () => {
    expect(requiredSelections(policy)).toEqual([{ alg: 'sha256', pcrs: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14] }]);
    const other = parsePolicy(v2With({ 1: 'version: 2\nallow_sha1: true', 34: '  bank: sha1' }), 'p.yaml').policy;
    expect(requiredSelections(other)).toEqual([
      { alg: 'sha1', pcrs: [10] },
      { alg: 'sha256', pcrs: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 14] },
    ]);
  });
});

describe('appraiseIma on a recorded measurement list', () => {
  // 826 ima-ng SHA-1 entries from a real kernel (rust-keylime test data), one a violation.
  const entries = parseImaList(imaFixture('rustkeylime_ascii_runtime_measurements_ima-ng_sha1.txt'));
  const files = entries.filter((e) => e.line > 1 && !e.violation);
  const allowAll: ImaPolicy = {
    list: '/x', bank: 'sha256', exclude: [], allowUnknownPaths: false, allowViolations: true,
    allow: files.map((e) => ({ path: e.path, digest: `sha1:${e.digest.toString('hex')}` })),
  };

  it('passes when every file is allowed', () => {
    expect(entries).toHaveLength(826);
    expect(appraiseIma(allowAll, entries)).toEqual([]);
  });

  it('names the entry, path and digest that is not allowed', () => {
    const sh = files.find((e) => e.path === '/bin/sh');
    const reasons = appraiseIma({ ...allowAll, allow: allowAll.allow.filter((a) => a.path !== '/bin/sh') }, entries);
    expect(reasons).toEqual([{ code: 'IMA_NOT_ALLOWED', message: `IMA entry ${sh?.line} /bin/sh sha1:c90333979f56f38bbd41b81806015b0de502f3cc not in allowlist` }]);
  });

  it('a violation fails unless allowed; excluded and unknown paths as configured', () => {
    const text = `${imaFixture('rustkeylime_ascii_runtime_measurements_ima-ng_sha1.txt').toString('utf8')}${violationLine('/var/log/syslog', 'sha1', 20)}`;
    const withViolation = parseImaList(text);
    const strict = { ...allowAll, allowViolations: false };
    expect(appraiseIma(strict, withViolation)).toEqual([{ code: 'IMA_VIOLATION', message: 'IMA entry 827 /var/log/syslog: measurement violation' }]);
    expect(appraiseIma(allowAll, withViolation)).toEqual([]);
    expect(appraiseIma({ ...strict, exclude: ['/var/log/'] }, withViolation)).toEqual([]);
    expect(appraiseIma({ ...allowAll, allow: [], allowUnknownPaths: true }, entries)).toEqual([]);
  });

  it('bounds the reasons and counts the rest', () => {
    const reasons = appraiseIma({ ...allowAll, allow: [] }, entries);
    expect(reasons).toHaveLength(101);
    expect(reasons[100]).toEqual({ code: 'IMA_MORE_FAILURES', message: `and ${files.length - 100} more IMA entries fail the allowlist` });
  });

  it('a path-less digest is allowed anywhere; boot_aggregate is not appraised', () => {
    const init = files.find((e) => e.path === '/init');
    const anywhere: ImaPolicy = { ...allowAll, allow: [{ digest: `sha1:${init?.digest.toString('hex') ?? ''}` }], allowUnknownPaths: false };
    expect(appraiseIma(anywhere, entries.slice(0, 2))).toEqual([]);
    expect(appraiseIma({ ...anywhere, allow: [{ digest: `sha1:${'00'.repeat(20)}` }] }, entries.slice(0, 2))).toEqual([
      { code: 'IMA_NOT_ALLOWED', message: `IMA entry 2 /init sha1:${init?.digest.toString('hex') ?? ''} not in allowlist` },
    ]);
  });
});

describe('appraiseCvm', () => {
  const snpReport = (name: string) => {
    const s = validSamples().find((x) => x.name === name);
    if (!s) throw new Error(name);
    return verifySnpReport(inputFor(s)).report;
  };
  // trustee: debug off, TCB bl=3 tee=0 snp=8 ucode=115, guest SVN 4; go-sev-guest: debug on.
  const trustee = snpReport('trustee milan vcek v2');
  const gosev = snpReport('gosevguest milan v2');
  const snpPolicy = parsePolicy(v2With({ 48: `    measurements: ["${trustee.measurement}"]`, 51: null }), 'p.yaml').policy.cvm as CvmPolicy;
  const now = Date.UTC(2026, 0, 1);
  const DAY = 86_400_000;

  it('a verified SEV-SNP report that meets the section passes', () => {
    expect(appraiseCvm(snpPolicy, { kind: 'snp', snp: trustee }, now, 29 * DAY)).toEqual([]);
    expect(appraiseCvm(snpPolicy, { kind: 'snp', snp: trustee }, now, { issuedAtMs: now - 2 * DAY })).toEqual([]);
  });

  it('maps debug, TCB and measurement onto the SNP checks', () => {
    const codes = appraiseCvm(snpPolicy, { kind: 'snp', snp: gosev }, now, 0).map((r) => r.code);
    expect(codes).toEqual(['SNP_DEBUG_ALLOWED', 'SNP_TCB_TOO_LOW', 'SNP_TCB_TOO_LOW', 'SNP_TCB_TOO_LOW', 'SNP_MEASUREMENT_MISMATCH']);
    const relaxed: CvmPolicy = { ...snpPolicy, snp: { debug: 'allowed' } };
    expect(appraiseCvm(relaxed, { kind: 'snp', snp: gosev }, now, 0)).toEqual([]);
    // With no snp section, a debuggable guest is still refused.
    expect(appraiseCvm({ required: true, type: 'any' }, { kind: 'snp', snp: gosev }, now).map((r) => r.code)).toEqual(['SNP_DEBUG_ALLOWED']);
  });

  it('required and missing, not required and missing, wrong kind', () => {
    expect(appraiseCvm(snpPolicy, undefined, now)).toEqual([{ code: 'CVM_MISSING', message: 'no confidential VM report; policy requires an SEV-SNP report' }]);
    expect(appraiseCvm({ ...snpPolicy, required: false }, undefined, now)).toEqual([]);
    const td = parseTdxQuote(tdxFixture('gotdxguest_quote_v4_SPR_E4.dat')).body;
    expect(appraiseCvm(snpPolicy, { kind: 'tdx', tdx: { body: td } }, now, 0)).toEqual([
      { code: 'CVM_TYPE_MISMATCH', message: 'the confidential VM is TDX; policy requires SEV-SNP' },
    ]);
  });

  it('stale or unknown collateral', () => {
    expect(appraiseCvm(snpPolicy, { kind: 'snp', snp: trustee }, now, 31 * DAY)).toEqual([
      { code: 'COLLATERAL_STALE', message: 'the collateral is 31d old; policy allows at most 30d' },
    ]);
    expect(appraiseCvm(snpPolicy, { kind: 'snp', snp: trustee }, now, { issuedAtMs: now - 40 * DAY }).map((r) => r.code)).toEqual(['COLLATERAL_STALE']);
    expect(appraiseCvm(snpPolicy, { kind: 'snp', snp: trustee }, now)).toEqual([
      { code: 'COLLATERAL_STALE', message: "the collateral's age is unknown; policy allows at most 30d" },
    ]);
  });

  it('maps the tdx section onto the TDX checks', () => {
    const prod = parseTdxQuote(tdxFixture('gotdxguest_quote_v4_SPR_E4.dat')).body;
    const debug = parseTdxQuote(tdxFixture('trustee_quote_v4_fmspc50806f.dat')).body;
    const tdx: CvmPolicy = {
      required: true, type: 'tdx',
      tdx: { debug: 'forbidden', mrtd: [prod.mrTd.toString('hex')], rtmr: { 1: [prod.rtmrs[1].toString('hex')] }, acceptedTcbStatus: ['UpToDate'] },
    };
    expect(appraiseCvm(tdx, { kind: 'tdx', tdx: { body: prod, tcbStatus: 'UpToDate' } }, now)).toEqual([]);
    expect(appraiseCvm(tdx, { kind: 'tdx', tdx: { body: prod, tcbStatus: 'OutOfDate' } }, now)).toEqual([
      { code: 'TDX_TCB_STATUS_NOT_ACCEPTED', message: 'TCB status OutOfDate is not accepted' },
    ]);
    expect(appraiseCvm(tdx, { kind: 'tdx', tdx: { body: prod } }, now).map((r) => r.code)).toEqual(['TDX_TCB_STATUS_MISSING']);
    expect(appraiseCvm(tdx, { kind: 'tdx', tdx: { body: debug, tcbStatus: 'UpToDate' } }, now).map((r) => r.code)).toEqual([
      'TDX_DEBUG_ENABLED', 'TDX_MRTD_NOT_ALLOWED', 'TDX_RTMR1_NOT_ALLOWED',
    ]);
  });
});

function device(index: number, uuid: string, over: Partial<GpuDevice> = {}): GpuDevice {
  return {
    index, uuid, name: 'NVIDIA H100 80GB HBM3', serial: `165${index}`, pciBusId: `00000000:${18 + index}:00.0`,
    vbiosVersion: '96.00.74.00.1C', inforomImageVersion: 'G520.0200.00.05', eccModeCurrent: 'enabled', migModeCurrent: 'disabled',
    persistenceMode: 'enabled', ccMode: 'on', ...over,
  };
}

function measurement(over: Partial<GpuMeasurement> = {}): GpuMeasurement {
  return {
    source: 'nvml', driverVersion: '550.54.15', nvmlVersion: '12.550.54.15', cudaDriverVersion: '12.4',
    procDriverVersion: 'NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15',
    gpus: [device(0, GPU0), device(1, GPU1)],
    ccState: { environment: 'prod', ccFeature: 'enabled', devToolsMode: 'off', gpusReady: 'ready' },
    moduleDigests: [
      { name: 'nvidia', path: '/lib/modules/6.8.0/kernel/drivers/video/nvidia.ko', sha256: A64 },
      { name: 'nvidia_uvm', path: '/lib/modules/6.8.0/kernel/drivers/video/nvidia-uvm.ko', sha256: 'cd'.repeat(32) },
    ],
    firmwareDigests: [{ path: '/lib/firmware/nvidia/550.54.15/gsp_ga10x.bin', sha256: 'b'.repeat(64) }],
    ...over,
  };
}

describe('appraiseGpu', () => {
  const gpu = policy.gpu as GpuPolicy;

  it('a host that matches passes', () => {
    expect(appraiseGpu(gpu, measurement())).toEqual([]);
  });

  it('no driver: a reason naming why when required, nothing otherwise', () => {
    const none = noGpuMeasurement('libnvidia-ml.so.1: cannot open shared object file');
    expect(appraiseGpu(gpu, none)).toEqual([
      { code: 'GPU_DRIVER_MISSING', message: 'no NVIDIA driver answered: libnvidia-ml.so.1: cannot open shared object file; policy requires GPUs' },
    ]);
    expect(appraiseGpu({ ...gpu, required: false }, none)).toEqual([]);
  });

  it('a swapped card is drift on both uuids', () => {
    const swapped = 'GPU-11111111-2222-3333-4444-555555555555';
    expect(appraiseGpu(gpu, measurement({ gpus: [device(0, GPU0), device(1, swapped)] }))).toEqual([
      { code: 'GPU_UUID_NOT_PINNED', message: `pinned GPU ${GPU1} is not present`, gpu: GPU1 },
      { code: 'GPU_UUID_NOT_PINNED', message: `GPU 1 (${swapped}, NVIDIA H100 80GB HBM3) is not a pinned GPU`, gpu: swapped },
    ]);
  });

  it('per-GPU checks carry the uuid; host-wide ones do not', () => {
    const m = measurement({
      driverVersion: '535.104.05',
      gpus: [device(0, GPU0, { vbiosVersion: '96.00.30.00.01', eccModeCurrent: 'disabled' }), device(1, GPU1, { ccMode: 'devtools' })],
      ccState: { environment: 'prod', ccFeature: 'enabled', devToolsMode: 'on', gpusReady: 'ready' },
      moduleDigests: [{ name: 'nvidia', path: '/lib/modules/nvidia.ko', sha256: 'ef'.repeat(32) }],
      firmwareDigests: [],
    });
    const reasons = appraiseGpu(gpu, m);
    expect(reasons).toEqual([
      { code: 'GPU_DRIVER_VERSION', message: 'driver version 535.104.05 is not allowed; policy allows 550.54.15' },
      { code: 'GPU_VBIOS_NOT_ALLOWED', message: `GPU 0 (${GPU0}, NVIDIA H100 80GB HBM3) VBIOS 96.00.30.00.01 is not allowed; policy allows 96.00.74.00.1c`, gpu: GPU0 },
      { code: 'GPU_ECC_DISABLED', message: `GPU 0 (${GPU0}, NVIDIA H100 80GB HBM3) ECC is disabled; policy requires it enabled`, gpu: GPU0 },
      { code: 'GPU_CC_MODE', message: `GPU 1 (${GPU1}, NVIDIA H100 80GB HBM3) confidential-computing mode is devtools; policy requires on`, gpu: GPU1 },
      { code: 'GPU_DEV_TOOLS', message: `GPU 1 (${GPU1}, NVIDIA H100 80GB HBM3) runs in developer-tools mode; policy forbids it`, gpu: GPU1 },
      { code: 'GPU_MODULE_DIGEST', message: `kernel module nvidia (/lib/modules/nvidia.ko) sha256 ${'ef'.repeat(32)} is not in the allowed set` },
      { code: 'GPU_FIRMWARE_MISSING', message: 'firmware file gsp_ga10x.bin was not measured; policy pins its digest' },
    ]);
    const { host, byGpu } = gpuReasonsByUuid(reasons);
    expect(host.map((r) => r.code)).toEqual(['GPU_DRIVER_VERSION', 'GPU_MODULE_DIGEST', 'GPU_FIRMWARE_MISSING']);
    expect([...byGpu.keys()]).toEqual([GPU0, GPU1]);
    expect(byGpu.get(GPU0)?.map((r) => r.code)).toEqual(['GPU_VBIOS_NOT_ALLOWED', 'GPU_ECC_DISABLED']);
  });

  it('an unlisted product, CC off, system-wide dev tools, a missing module, a bad firmware digest', () => {
    const other = device(0, GPU0, { name: 'NVIDIA A100-SXM4-80GB' });
    const m = measurement({
      gpus: [other, device(1, GPU1)],
      ccState: { environment: 'prod', ccFeature: 'enabled', devToolsMode: 'on', gpusReady: 'ready' },
      moduleDigests: [],
      firmwareDigests: [{ path: '/lib/firmware/nvidia/550.54.15/gsp_ga10x.bin', sha256: '00'.repeat(32) }],
    });
    expect(appraiseGpu(gpu, m).map((r) => `${r.code}${r.gpu ? `@${r.gpu.slice(4, 8)}` : ''}`)).toEqual([
      'GPU_VBIOS_NOT_ALLOWED@5e3c', 'GPU_DEV_TOOLS', 'GPU_MODULE_MISSING', 'GPU_FIRMWARE_DIGEST',
    ]);
    const off: GpuPolicy = { required: true, ccMode: 'off', devTools: 'allowed', ecc: 'any', attestation: 'off' };
    expect(appraiseGpu(off, measurement({ gpus: [device(0, GPU0, { ccMode: 'n/a' }), device(1, GPU1, { ccMode: 'on' })] }))).toEqual([
      { code: 'GPU_CC_MODE', message: `GPU 1 (${GPU1}, NVIDIA H100 80GB HBM3) confidential-computing mode is on; policy requires off`, gpu: GPU1 },
    ]);
  });
});

describe('resolveRuleGpus', () => {
  const rule = (gpus: Rule['gpus']): Rule => ({ name: 'trainer', match: { uids: [1000] }, ttlMs: 30_000, scopes: ['gpu'], ...(gpus === undefined ? {} : { gpus }) });
  const m = measurement();

  it('all, uuids and indices resolve to the GPUs present, ordered by index', () => {
    expect(resolveRuleGpus(rule('all'), m)).toEqual({ uuids: [GPU0, GPU1], indices: [0, 1] });
    expect(resolveRuleGpus(rule([GPU1, 0]), m)).toEqual({ uuids: [GPU0, GPU1], indices: [0, 1] });
    expect(resolveRuleGpus(rule([1, GPU1]), m)).toEqual({ uuids: [GPU1], indices: [1] });
    expect(resolveRuleGpus(rule(undefined), m)).toEqual({ uuids: [], indices: [] });
    expect(resolveRuleGpus(rule('all'), noGpuMeasurement('none'))).toEqual({ uuids: [], indices: [] });
  });

  it('a GPU the host does not have is a reason', () => {
    const gone = 'GPU-11111111-2222-3333-4444-555555555555';
    expect(resolveRuleGpus(rule([0, gone]), m)).toEqual({
      code: 'RULE_GPU_NOT_PRESENT', message: `rule trainer names GPU ${gone}, which this host does not have (2 GPUs present)`, gpu: gone,
    });
    expect(resolveRuleGpus(rule([2]), m)).toEqual({ code: 'RULE_GPU_NOT_PRESENT', message: 'rule trainer names GPU index 2, which this host does not have (2 GPUs present)' });
  });

  it('uuids written in upper case in the policy match', () => {
    const p = parsePolicy(v2With({ 15: `      gpus: ["${GPU1.toUpperCase()}"]` }), 'p.yaml').policy;
    expect(resolveRuleGpus(p.rules[0] as Rule, m)).toEqual({ uuids: [GPU1], indices: [1] });
  });
});

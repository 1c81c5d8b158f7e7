import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../daemon/policy/parse.js';
import { loadPolicyFile } from '../../daemon/config/policy-file.js';
import { A64, B64, GPU0, GPU1, M96, Z64, only, problems, v2With, where } from './policy-v2-helpers.js';

const hex = (b: Buffer | undefined): string => b?.toString('hex') ?? '';
const TDX_SECTION = [
  '  tdx:',
  '    debug: allowed',
  `    mrtd: ["${M96.toUpperCase()}"]`,
  `    rtmr: { 0: ["${M96}"], 3: ["${M96}"] }`,
  '    accepted_tcb_status: [UpToDate, SWHardeningNeeded]',
  '    min_tee_tcb_svn: "0300040000000000000000000000000F"',
].join('\n');
/** v2With, the snp section replaced by TDX_SECTION on lines 45-50; `lines` replaces lines there. */
const tdx = (lines: Record<number, string> = {}, type = '  type: tdx'): string => {
  const section = TDX_SECTION.split('\n').map((line, i) => lines[45 + i] ?? line);
  return v2With({ 42: type, 45: section.join('\n'), 46: null, 47: null, 48: null, 49: null, 50: null, 51: null });
};

describe('policy version 2: valid documents', () => {
  it('builds every section with typed values', () => {
    const p = parsePolicy(v2With(), 'p.yaml').policy;
    expect(p.version).toBe(2);
    expect(p.rules[0]?.gpus).toEqual([0, GPU1]);
    expect(p.updateWindow).toEqual({ until: '2027-01-31T00:00:00Z', untilMs: Date.UTC(2027, 0, 31), pcrs: [{ alg: 'sha256', index: 4, allowed: [Buffer.from(A64, 'hex')] }] });
    expect(p.boot).toEqual({
      eventLog: '/sys/kernel/security/tpm0/binary_bios_measurements',
      bank: 'sha256',
      secureBoot: 'required',
      forbidTestKeys: true,
      bootApplications: [{ alg: 'sha256', allowed: [Buffer.from(A64, 'hex')] }],
      kernelCmdline: { require: ['lockdown=integrity'], forbid: ['init=/bin/sh'] },
      allowAfterSeparator: ['EV_EFI_HANDOFF_TABLES'],
    });
    expect(p.ima).toEqual({
      list: '/sys/kernel/security/ima/ascii_runtime_measurements',
      bank: 'sha256',
      allow: [{ path: '/usr/bin/python3.11', digest: `sha256:${B64}` }],
      exclude: ['/tmp/'],
      allowUnknownPaths: false,
      allowViolations: false,
    });
    expect(p.cvm).toEqual({
      required: true,
      type: 'snp',
      collateral: '/etc/attestd/collateral',
      maxCollateralAgeMs: 30 * 86_400_000,
      snp: { debug: 'forbidden', minTcb: { bootloader: 3, tee: 0, snp: 8, microcode: 115 }, measurements: [M96], vmpl: 0, minGuestSvn: 0, hostData: Z64 },
    });
    const gpu = p.gpu;
    expect(gpu?.required).toBe(true);
    expect(gpu?.driverVersions).toEqual(['550.54.15']);
    expect([...(gpu?.vbiosVersions ?? [])]).toEqual([['NVIDIA H100 80GB HBM3', ['96.00.74.00.1c']]]);
    expect(gpu?.pinnedUuids).toEqual([GPU0, GPU1]);
    expect([gpu?.ccMode, gpu?.devTools, gpu?.ecc]).toEqual(['on', 'forbidden', 'required']);
    expect(hex(gpu?.moduleDigests?.get('nvidia')?.[0])).toBe(A64);
    expect(hex(gpu?.firmwareDigests?.get('gsp_ga10x.bin')?.[0])).toBe(B64);
  });

  it('fills the documented defaults for minimal sections', () => {
    const text = v2With({
      15: '      gpus: all',
      23: null, 24: null, 25: null, 26: null, 27: null, 28: null, 29: null, 30: null, 31: null,
      34: null, 35: null, 36: null, 37: null, 38: null, 39: null,
      40: 'cvm: {}', 41: null, 42: null, 43: null, 44: null, 45: null, 46: null, 47: null, 48: null, 49: null, 50: null, 51: null,
      52: 'gpu: {}', 53: null, 54: null, 55: null, 56: null, 57: null, 58: null, 59: null, 60: null, 61: null,
    });
    const p = parsePolicy(text, 'p.yaml').policy;
    expect(p.rules[0]?.gpus).toBe('all');
    expect(p.boot).toEqual({ eventLog: '/sys/kernel/security/tpm0/binary_bios_measurements', bank: 'sha256', secureBoot: 'required', forbidTestKeys: true, allowAfterSeparator: [] });
    expect(p.ima).toEqual({ list: '/sys/kernel/security/ima/ascii_runtime_measurements', bank: 'sha256', allow: [], exclude: [], allowUnknownPaths: false, allowViolations: false });
    expect(p.cvm).toEqual({ required: true, type: 'any' });
    expect(p.gpu).toEqual({ required: true, ccMode: 'any', devTools: 'forbidden', ecc: 'any', attestation: 'off' });
  });

  it('a tdx section maps every field', () => {
    const p = parsePolicy(tdx(), 'p.yaml').policy;
    expect(p.cvm?.type).toBe('tdx');
    expect(p.cvm?.tdx).toEqual({
      debug: 'allowed',
      mrtd: [M96],
      rtmr: { 0: [M96], 3: [M96] },
      acceptedTcbStatus: ['UpToDate', 'SWHardeningNeeded'],
      minTeeTcbSvn: '0300040000000000000000000000000f',
    });
  });

  it('normalises GPU uuids to lowercase hex and keeps indices', () => {
    const p = parsePolicy(v2With({ 15: `      gpus: ["${GPU0.toUpperCase().replace('GPU-', 'GPU-')}", 3]` }), 'p.yaml').policy;
    expect(p.rules[0]?.gpus).toEqual([GPU0, 3]);
  });

  it('version 1 files load unchanged, with every version 2 field undefined', async () => {
    const { policy } = await loadPolicyFile('policies/dev.yaml');
    expect(policy.version).toBe(1);
    for (const key of ['updateWindow', 'boot', 'ima', 'cvm', 'gpu'] as const) expect(policy[key]).toBeUndefined();
    expect(policy.rules.every((r) => r.gpus === undefined)).toBe(true);
  });

  it('policies/reference.yaml is version 2 and uses every section', async () => {
    const { policy } = await loadPolicyFile('policies/reference.yaml');
    expect(policy.version).toBe(2);
    for (const key of ['updateWindow', 'boot', 'ima', 'cvm', 'gpu'] as const) expect(policy[key]).toBeDefined();
    expect(policy.rules.map((r) => r.gpus)).toEqual([[GPU0, 1], 'all']);
    expect(readFileSync('policies/reference.yaml', 'utf8')).toMatch(/^version: 2$/m);
  });
});

describe('policy version 2: problems are located', () => {
  it('a version 1 file may not use version 2 sections', () => {
    const ps = problems(v2With({ 1: 'version: 1' }));
    expect(where(ps)).toEqual(['15:7 rules[0].lease.gpus', '16:1 update_window', '21:1 boot', '32:1 ima', '40:1 cvm', '52:1 gpu']);
    expect(ps[0]?.message).toBe('expected version: 2 for lease.gpus; a version 1 policy does not have it');
    expect(ps[2]?.message).toBe('expected version: 2 for the boot section; a version 1 policy does not have it');
  });

  it('an unknown version', () => {
    expect(problems(v2With({ 1: 'version: 3' }))[0]?.message).toBe('expected the number 1 or 2, found the number 3');
  });

  it('update_window', () => {
    expect(only(v2With({ 17: '  until: 2027-01-31' }))).toBe(
      '17:10 update_window.until: expected an RFC 3339 UTC time such as "2027-01-31T00:00:00Z", found "2027-01-31"',
    );
    expect(only(v2With({ 17: '  until: "2027-02-30T00:00:00Z"' }))).toBe(
      '17:10 update_window.until: expected a real UTC date and time, found "2027-02-30T00:00:00Z"',
    );
    expect(only(v2With({ 20: `      7: ["${A64}"]` }))).toBe(
      '20:7 update_window.pcrs.sha256.7: expected a PCR the top-level pcrs also names (sha256:7); a window only adds values to a required PCR',
    );
    expect(only(v2With({ 18: null, 19: null, 20: null }))).toMatch(/^16:1 update_window.pcrs: missing required field 'pcrs': expected a mapping from bank name/);
    expect(only(v2With({ 20: '      4: ["abc"]' }))).toMatch(/^20:11 update_window.pcrs.sha256.4\[0\]: expected a 64-character hex SHA-256 digest/);
    // A sha1 window needs allow_sha1, and like any window PCR, a top-level requirement.
    const sha1 = problems(v2With({ 19: '    sha1:', 20: `      4: ["${'1'.repeat(40)}"]` }));
    expect(where(sha1)).toEqual(['19:5 update_window.pcrs.sha1', '20:7 update_window.pcrs.sha1.4']);
    expect(sha1[0]?.message).toMatch(/^expected no sha1 bank: .*allow_sha1: true/);
  });

  it('boot', () => {
    expect(only(v2With({ 22: '  event_log: binary_bios_measurements' }))).toBe(
      '22:14 boot.event_log: expected an absolute event log path starting with /, found "binary_bios_measurements"',
    );
    expect(only(v2With({ 22: '  event_log: /sys/kernel/../x' }))).toBe('22:14 boot.event_log: expected a normalized path without . or .. segments');
    expect(only(v2With({ 23: '  bank: sha1' }))).toBe('23:9 boot.bank: expected a bank other than sha1, unless the policy sets allow_sha1: true at the top level');
    expect(only(v2With({ 23: '  bank: sha3' }))).toBe('23:9 boot.bank: expected a PCR bank: sha1, sha256, sha384 or sha512, found "sha3"');
    expect(only(v2With({ 24: '  secure_boot: yes' }))).toBe('24:16 boot.secure_boot: expected required or any, found "yes"');
    expect(only(v2With({ 24: '  secure_bot: required' }))).toBe(
      `24:3 boot.secure_bot: unknown field "secure_bot" (did you mean 'secure_boot'?); expected one of: event_log, bank, secure_boot, forbid_test_keys, boot_applications, kernel_cmdline, allow_after_separator`,
    );
    expect(only(v2With({ 25: '  forbid_test_keys: "true"' }))).toBe('25:21 boot.forbid_test_keys: expected true or false, found "true"');
    expect(only(v2With({ 27: '    sha256: ["abc"]' }))).toBe(
      '27:14 boot.boot_applications.sha256[0]: expected a 64-character hex SHA-256 boot application value (quote it, so YAML keeps it a string), found "abc"',
    );
    expect(only(v2With({ 27: `    sha1: ["${'1'.repeat(40)}"]` }))).toMatch(/^27:5 boot.boot_applications.sha1: expected no sha1 bank/);
    expect(only(v2With({ 30: '    forbid: ["lockdown"]' }))).toBe(
      '30:14 boot.kernel_cmdline.forbid[0]: expected a substring no required one contains; every command line must contain "lockdown=integrity"',
    );
    expect(only(v2With({ 28: '  kernel_cmdline: {}', 29: null, 30: null }))).toBe(
      '28:19 boot.kernel_cmdline: expected a mapping with require and/or forbid, found an empty mapping',
    );
    expect(only(v2With({ 29: '    requires: ["x"]' }))).toBe(
      `29:5 boot.kernel_cmdline.requires: unknown field "requires" (did you mean 'require'?); expected one of: require, forbid`,
    );
    expect(only(v2With({ 29: '    require: [""]' }))).toBe(
      '29:15 boot.kernel_cmdline.require[0]: expected a plain substring (not a pattern) of 1 to 1024 printable ASCII characters, found an empty string',
    );
    expect(only(v2With({ 31: '  allow_after_separator: [EV_BOGUS]' }))).toBe(
      '31:27 boot.allow_after_separator[0]: expected an event type name such as EV_EFI_HANDOFF_TABLES, found "EV_BOGUS"',
    );
    expect(only(v2With({ 22: null }))).toMatch(/^21:1 boot.event_log: missing required field 'event_log': expected an absolute event log path/);
  });

  it('ima', () => {
    expect(only(v2With({ 36: `    - { path: /usr/bin/python3.11, sha256: "${B64}", sha384: "${M96}" }` }))).toBe(
      '36:7 ima.allow[0]: expected exactly one file digest (sha1, sha256, sha384 or sha512), found sha256 and sha384',
    );
    const sha1 = `    - { path: /init, sha1: "${'1'.repeat(40)}" }`;
    expect(only(v2With({ 36: sha1 }))).toBe('36:22 ima.allow[0].sha1: expected a digest other than sha1, unless the policy sets allow_sha1: true at the top level');
    expect(parsePolicy(v2With({ 1: 'version: 2\nallow_sha1: true', 36: sha1 }), 'p.yaml').policy.ima?.allow).toEqual([{ path: '/init', digest: `sha1:${'1'.repeat(40)}` }]);
    expect(only(v2With({ 36: '    - { path: /usr/bin/python3.11 }' }))).toBe(
      '36:7 ima.allow[0]: expected exactly one file digest (sha1, sha256, sha384 or sha512), found none',
    );
    expect(only(v2With({ 36: `    - { path: usr/bin/x, sha256: "${B64}" }` }))).toBe('36:15 ima.allow[0].path: expected an absolute file path starting with /, found "usr/bin/x"');
    expect(only(v2With({ 36: `    - { sha512: "${B64}" }` }))).toMatch(/^36:17 ima.allow\[0\].sha512: expected a 128-character hex SHA-512 digest/);
    expect(only(v2With({ 37: '  exclude: ["tmp/"]' }))).toBe('37:13 ima.exclude[0]: expected an absolute path prefix starting with /, found "tmp/"');
    expect(only(v2With({ 33: '  list: /sys//ima' }))).toBe('33:9 ima.list: expected a path without empty segments (//)');
    expect(only(v2With({ 38: '  allow_unknown_paths: 0' }))).toBe('38:24 ima.allow_unknown_paths: expected true or false, found the number 0');
  });

  it('cvm', () => {
    expect(only(v2With({ 42: '  type: tdx' }))).toBe('45:3 cvm.snp: expected no snp section when type is tdx');
    expect(only(tdx({}, '  type: snp'))).toBe('45:3 cvm.tdx: expected no tdx section when type is snp');
    expect(only(v2With({ 42: '  type: sev' }))).toBe('42:9 cvm.type: expected one of snp, tdx, any, found "sev"');
    expect(only(v2With({ 44: '  max_collateral_age: 400d' }))).toBe('44:23 cvm.max_collateral_age: expected a duration from 1h to 366d, found 400d');
    expect(only(v2With({ 44: '  max_collateral_age: 30m' }))).toBe('44:23 cvm.max_collateral_age: expected a duration from 1h to 366d, found 30m');
    expect(only(v2With({ 44: '  max_collateral_age: 1w' }))).toBe(
      '44:23 cvm.max_collateral_age: expected a duration: an integer followed by ms, s, m, h or d, such as 12h or 30d, found "1w"',
    );
    expect(only(v2With({ 47: '    min_tcb: { bootloader: 3, tee: 0, snp: 8 }' }))).toBe(
      "47:5 cvm.snp.min_tcb.microcode: missing required field 'microcode': expected an SVN from 0 to 255",
    );
    expect(only(v2With({ 47: '    min_tcb: { bootloader: 256, tee: 0, snp: 8, microcode: 115 }' }))).toBe(
      '47:28 cvm.snp.min_tcb.bootloader: expected an SVN from 0 to 255, found the number 256',
    );
    expect(only(v2With({ 48: '    measurements: ["cc"]' }))).toBe(
      '48:20 cvm.snp.measurements[0]: expected a 96-character hex launch measurement value (quote it, so YAML keeps it a string), found "cc"',
    );
    expect(only(v2With({ 49: '    vmpl: 4' }))).toBe('49:11 cvm.snp.vmpl: expected a VMPL from 0 to 3, found the number 4');
    expect(only(v2With({ 46: '    debug: on' }))).toBe('46:12 cvm.snp.debug: expected forbidden or allowed, found "on"');
    expect(only(tdx({ 48: `    rtmr: { 4: ["${M96}"] }` }))).toBe('48:13 cvm.tdx.rtmr.4: expected an RTMR index from 0 to 3 as the key, found "4"');
    expect(only(tdx({ 49: '    accepted_tcb_status: [Fine]' }))).toMatch(/^49:27 cvm.tdx.accepted_tcb_status\[0\]: expected a TCB status: UpToDate, .*, found "Fine"$/);
    expect(only(tdx({ 50: '    min_tee_tcb_svn: "03"' }))).toBe('50:22 cvm.tdx.min_tee_tcb_svn: expected a 32-character hex TEE_TCB_SVN (quote it), found "03"');
  });

  it('gpu', () => {
    expect(only(v2With({ 57: '  cc_mode: maybe' }))).toBe('57:12 gpu.cc_mode: expected one of on, off, any, found "maybe"');
    expect(only(v2With({ 58: '  dev_tools: on' }))).toBe('58:14 gpu.dev_tools: expected forbidden or allowed, found "on"');
    expect(only(v2With({ 59: '  ecc: true' }))).toBe('59:8 gpu.ecc: expected required or any, found true');
    expect(only(v2With({ 56: '  pinned_uuids: ["GPU-1234"]' }))).toBe(
      '56:18 gpu.pinned_uuids[0]: expected a GPU uuid: GPU- then 8-4-4-4-12 hex digits, found "GPU-1234"',
    );
    expect(only(v2With({ 56: `  pinned_uuids: ["${GPU0}", "${GPU0.toUpperCase()}"]` }))).toBe(
      `56:62 gpu.pinned_uuids[1]: expected each GPU once; "${GPU0.toUpperCase()}" is listed twice`,
    );
    expect(only(v2With({ 60: `  module_digests: { "nvidia/x": ["${A64}"] }` }))).toBe(
      '60:21 gpu.module_digests["nvidia/x"]: expected a kernel module name such as nvidia as the key, found "nvidia/x"',
    );
    expect(only(v2With({ 61: `  firmware_digests: { "gsp.bin": ["${A64.slice(1)}"] }` }))).toMatch(
      /^61:35 gpu.firmware_digests\["gsp.bin"\]\[0\]: expected a 64-character hex SHA-256 firmware value/,
    );
    expect(only(v2With({ 55: '  vbios_versions: { "NVIDIA H100 80GB HBM3": [] }' }))).toBe(
      '55:46 gpu.vbios_versions["NVIDIA H100 80GB HBM3"]: expected a non-empty list of VBIOS versions, found an empty list',
    );
    expect(only(v2With({ 54: '  driver_versions: [550]' }))).toBe('54:21 gpu.driver_versions[0]: expected a driver version such as 550.54.15 (quote it), found the number 550');
  });

  it('gpu.rims: a folder of RIMs beside required attestation', () => {
    const withRims = (rims: string, attestation = '  attestation: required') => v2With({ 59: `  ecc: required\n${attestation}\n${rims}` });
    const p = parsePolicy(withRims('  rims: { dir: /etc/attestd/rims }'), 'p.yaml').policy;
    expect(p.gpu?.rims).toEqual({ dir: '/etc/attestd/rims', required: true });
    expect(parsePolicy(withRims('  rims: { dir: /r, required: false }'), 'p.yaml').policy.gpu?.rims).toEqual({ dir: '/r', required: false });
    expect(only(withRims('  rims: { dir: /r }', '  attestation: off'))).toMatch(/^61:\d+ gpu.rims: expected attestation: required alongside rims/);
    expect(only(withRims('  rims: { dir: rims }'))).toMatch(/^61:\d+ gpu.rims.dir: expected/);
    expect(only(withRims('  rims: { required: true }'))).toMatch(/^61:\d+ gpu.rims/);
  });

  it('rules[].lease.gpus', () => {
    expect(only(v2With({ 15: '      gpus: some' }))).toBe(
      '15:13 rules[0].lease.gpus: expected all, or a non-empty list of at most 64 GPU uuids and indices, found "some"',
    );
    expect(only(v2With({ 15: '      gpus: [64]' }))).toBe(
      '15:14 rules[0].lease.gpus[0]: expected a GPU uuid (GPU- then 8-4-4-4-12 hex digits) or a GPU index from 0 to 63, found the number 64',
    );
    expect(only(v2With({ 15: '      gpus: [0, 0]' }))).toBe('15:17 rules[0].lease.gpus[1]: expected each GPU once; 0 is listed twice');
    expect(only(v2With({ 15: '      gpus: []' }))).toBe('15:13 rules[0].lease.gpus: expected all, or a non-empty list of at most 64 GPU uuids and indices, found an empty list');
    // A mapping among the entries is a type error, not a crash (found by policy-v2-fuzz).
    expect(only(v2With({ 15: '      gpus: [{}]' }))).toMatch(/^15:14 rules\[0\].lease.gpus\[0\]: expected a GPU uuid .*, found an empty mapping$/);
    expect(only(v2With({ 15: '      gpus: ["GPU-x"]' }))).toMatch(/^15:14 rules\[0\].lease.gpus\[0\]: expected a GPU uuid/);
  });

  it('unknown top-level section with a suggestion', () => {
    expect(only(v2With({ 52: 'gpus:' }))).toMatch(/^52:1 gpus: unknown field "gpus" \(did you mean 'gpu'\?\); expected one of: version, allow_sha1, attestation, pcrs, rules, update_window, boot, ima, cvm, gpu$/);
  });
});

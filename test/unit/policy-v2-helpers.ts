// Shared by the policy-v2-*.test.ts files: a valid version 2 policy, one field a line, so a
// test can swap a line and know its number, and helpers to read the problems it yields.
import { expect } from 'vitest';
import { PolicyError, parsePolicy } from '../../daemon/policy/parse.js';
import type { PolicyProblem } from '../../daemon/policy/types.js';

export const Z64 = '0'.repeat(64);
export const A64 = 'a'.repeat(64);
export const B64 = 'b'.repeat(64);
export const M96 = 'c'.repeat(96);
export const GPU0 = 'GPU-5e3c6f2a-91d4-4b7e-8f10-2c9a7d3b6e41';
export const GPU1 = 'GPU-0b7d9a3e-2f61-4c85-9e0a-7d4c1b8f2a63';

export const BASE_V2 = [
  'version: 2', //                                                          1
  'attestation:', //                                                        2
  '  interval: 2s', //                                                      3
  '  max_age: 6s', //                                                       4
  'pcrs:', //                                                               5
  '  sha256:', //                                                           6
  `    4: "${Z64}"`, //                                                     7
  'rules:', //                                                              8
  '  - name: dev', //                                                       9
  '    match:', //                                                          10
  '      uids: [1000]', //                                                  11
  '    lease:', //                                                          12
  '      ttl: 30s', //                                                      13
  '      scopes: ["gpu:all"]', //                                           14
  `      gpus: [0, "${GPU1}"]`, //                                          15
  'update_window:', //                                                      16
  '  until: "2027-01-31T00:00:00Z"', //                                     17
  '  pcrs:', //                                                             18
  '    sha256:', //                                                         19
  `      4: ["${A64}"]`, //                                                 20
  'boot:', //                                                               21
  '  event_log: /sys/kernel/security/tpm0/binary_bios_measurements', //     22
  '  bank: sha256', //                                                      23
  '  secure_boot: required', //                                             24
  '  forbid_test_keys: true', //                                            25
  '  boot_applications:', //                                                26
  `    sha256: ["${A64}"]`, //                                              27
  '  kernel_cmdline:', //                                                   28
  '    require: ["lockdown=integrity"]', //                                 29
  '    forbid: ["init=/bin/sh"]', //                                        30
  '  allow_after_separator: [EV_EFI_HANDOFF_TABLES]', //                    31
  'ima:', //                                                                32
  '  list: /sys/kernel/security/ima/ascii_runtime_measurements', //         33
  '  bank: sha256', //                                                      34
  '  allow:', //                                                            35
  `    - { path: /usr/bin/python3.11, sha256: "${B64}" }`, //              36
  '  exclude: ["/tmp/"]', //                                                37
  '  allow_unknown_paths: false', //                                        38
  '  allow_violations: false', //                                           39
  'cvm:', //                                                                40
  '  required: true', //                                                    41
  '  type: snp', //                                                         42
  '  collateral: /etc/attestd/collateral', //                               43
  '  max_collateral_age: 30d', //                                           44
  '  snp:', //                                                              45
  '    debug: forbidden', //                                                46
  '    min_tcb: { bootloader: 3, tee: 0, snp: 8, microcode: 115 }', //      47
  `    measurements: ["${M96}"]`, //                                        48
  '    vmpl: 0', //                                                         49
  '    min_guest_svn: 0', //                                                50
  `    host_data: "${Z64}"`, //                                             51
  'gpu:', //                                                                52
  '  required: true', //                                                    53
  '  driver_versions: ["550.54.15"]', //                                    54
  '  vbios_versions: { "NVIDIA H100 80GB HBM3": ["96.00.74.00.1C"] }', //   55
  `  pinned_uuids: ["${GPU0}", "${GPU1}"]`, //                              56
  '  cc_mode: on', //                                                       57
  '  dev_tools: forbidden', //                                              58
  '  ecc: required', //                                                     59
  `  module_digests: { nvidia: ["${A64}"] }`, //                            60
  `  firmware_digests: { "gsp_ga10x.bin": ["${B64}"] }`, //                 61
];

/** BASE_V2 with lines replaced (a string, possibly several lines) or removed (null). */
export function v2With(changes: Record<number, string | null> = {}): string {
  const out: string[] = [];
  BASE_V2.forEach((line, i) => {
    const change = changes[i + 1];
    if (change === null) return;
    out.push(change ?? line);
  });
  return `${out.join('\n')}\n`;
}

export function problems(text: string): PolicyProblem[] {
  try {
    parsePolicy(text, 'p.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyError);
    return (err as PolicyError).problems;
  }
  throw new Error('policy was accepted');
}

/** line:column path, the part of a problem a test pins exactly. */
export function where(ps: PolicyProblem[]): string[] {
  return ps.map((p) => `${p.line}:${p.column} ${p.path}`);
}

/** The single problem a change causes, as "line:column path: message". */
export function only(text: string): string {
  const ps = problems(text);
  expect(ps, JSON.stringify(ps)).toHaveLength(1);
  const p = ps[0] as PolicyProblem;
  return `${p.line}:${p.column} ${p.path}: ${p.message}`;
}

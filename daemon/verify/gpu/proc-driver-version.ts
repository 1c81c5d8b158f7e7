/**
 * The driver version in the text of /proc/driver/nvidia/version, whose first line reads, for
 * the proprietary and the open kernel module respectively:
 *
 *   NVRM version: NVIDIA UNIX x86_64 Kernel Module  515.76  Mon Sep 12 19:21:56 UTC 2022
 *   NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  575.57.08  Release Build  (…)
 */
const VERSION = /^[0-9]{1,5}(\.[0-9]{1,5}){1,3}$/;

/** The first version-shaped word of the NVRM line, or undefined when there is none. */
export function driverVersionFromProcText(text: string): string | undefined {
  const line = text.split('\n', 8).find((l) => l.startsWith('NVRM version:'));
  if (line === undefined) return undefined;
  return line.slice('NVRM version:'.length).split(/\s+/).find((w) => VERSION.test(w));
}

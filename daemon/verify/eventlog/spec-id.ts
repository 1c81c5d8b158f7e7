/**
 * The EV_NO_ACTION events of a PC Client log (PFP 10.4.5): the Spec ID event that makes a
 * log crypto-agile and declares its digest algorithms, the StartupLocality event that sets
 * PCR 0's starting value, and the informational ones (SP800-155, NV index) that are only
 * named. None of them is ever extended.
 */
import { AttestdError } from '../../base/errors.js';
import { digestSize, hex16, TPM_ALG, type HashAlg } from '../tpm-alg.js';
import { ByteReader } from '../bytes/reader.js';
import type { EventDetails, EventLogLimits, LogAlgorithm, SpecIdEvent } from './types.js';

export const SPEC_ID_03 = 'Spec ID Event03\0';
export const STARTUP_LOCALITY = 'StartupLocality\0';

/** Other NO_ACTION signatures worth naming; their bodies are shown as hex. */
const NO_ACTION_SIGNATURES = [
  'Spec ID Event00\0',
  'Spec ID Event02\0',
  'SP800-155 Event\0',
  'SP800-155 Event3',
  'NvIndexInstance\0',
  'NvIndexDynamic\0',
] as const;

/** Largest digest an undeclared-by-us algorithm may claim (SHA3-512 and SM3 fit). */
const MAX_UNKNOWN_DIGEST_SIZE = 64;

const KNOWN_IDS: ReadonlyMap<number, HashAlg> = new Map([
  [TPM_ALG.SHA1, 'sha1'],
  [TPM_ALG.SHA256, 'sha256'],
  [TPM_ALG.SHA384, 'sha384'],
  [TPM_ALG.SHA512, 'sha512'],
]);

export function startsWithAscii(data: Buffer, sig: string): boolean {
  return data.length >= sig.length && data.toString('latin1', 0, sig.length) === sig;
}

/** The key a digest is stored under in TcgEvent.digests. */
export function algKey(a: LogAlgorithm): HashAlg | string {
  return a.alg ?? `0x${hex16(a.id)}`;
}

/**
 * TCG_EfiSpecIDEvent, read strictly within the event's data. A known algorithm must carry
 * its real digest size; an unknown one must carry a plausible size so later events can be
 * framed (it is reported, and skipped in replay).
 */
export function parseSpecId(data: Buffer, offset: number, limits: EventLogLimits): SpecIdEvent {
  const r = new ByteReader(data, 'le', 'EVENTLOG_MALFORMED', () => `event 0 at offset 0x${offset.toString(16)}: `);
  const signature = r.bytes(16, 'Spec ID signature').toString('latin1').replace(/\0+$/, '');
  const platformClass = r.u32('Spec ID platformClass');
  const specVersionMinor = r.u8('Spec ID specVersionMinor');
  const specVersionMajor = r.u8('Spec ID specVersionMajor');
  const specErrata = r.u8('Spec ID specErrata');
  const uintnSize = r.u8('Spec ID uintnSize');
  const count = r.u32('Spec ID numberOfAlgorithms');
  if (count === 0) r.fail('Spec ID event declares no digest algorithms');
  if (count > limits.maxAlgorithms) {
    r.fail(`Spec ID numberOfAlgorithms ${count} exceeds the limit of ${limits.maxAlgorithms}`);
  }
  r.need(count * 4, 'Spec ID digestSizes');
  const algorithms: LogAlgorithm[] = [];
  for (let i = 0; i < count; i++) {
    const id = r.u16('algorithmId');
    const size = r.u16('digestSize');
    if (algorithms.some((a) => a.id === id)) r.fail(`Spec ID declares algorithm 0x${hex16(id)} twice`);
    const alg = KNOWN_IDS.get(id);
    if (alg !== undefined) {
      if (size !== digestSize(alg)) r.fail(`Spec ID gives ${alg} a digest size of ${size}, expected ${digestSize(alg)}`);
    } else if (size === 0 || size > MAX_UNKNOWN_DIGEST_SIZE) {
      throw new AttestdError(
        'QUOTE_UNSUPPORTED_ALGORITHM',
        `event 0 at offset 0x${offset.toString(16)}: unknown algorithm 0x${hex16(id)} has digest size ${size}, so its digests cannot be framed`,
      );
    }
    algorithms.push({ id, alg, digestSize: size });
  }
  const vendorInfoSize = r.u8('Spec ID vendorInfoSize');
  const vendorInfo = r.hex(vendorInfoSize, 'Spec ID vendorInfo');
  r.end('Spec ID event');
  return {
    signature, platformClass, specVersionMajor, specVersionMinor, specErrata, uintnSize, algorithms, vendorInfo,
  };
}

/** Locality byte of a StartupLocality event, or undefined when `data` is not one. */
export function startupLocalityOf(data: Buffer): number | undefined {
  if (data.length !== STARTUP_LOCALITY.length + 1 || !startsWithAscii(data, STARTUP_LOCALITY)) return undefined;
  return data[STARTUP_LOCALITY.length];
}

/** Details for an EV_NO_ACTION event other than the leading Spec ID event. */
export function noActionDetails(data: Buffer): EventDetails {
  const locality = startupLocalityOf(data);
  if (locality !== undefined) return { kind: 'startup-locality', locality };
  if (startsWithAscii(data, SPEC_ID_03)) return { kind: 'spec-id', note: 'a Spec ID event after the first event' };
  for (const sig of NO_ACTION_SIGNATURES) {
    if (startsWithAscii(data, sig)) {
      return { kind: 'no-action', signature: sig.replace(/\0$/, ''), body: data.subarray(sig.length).toString('hex') };
    }
  }
  return { kind: 'no-action', hex: data.toString('hex') };
}

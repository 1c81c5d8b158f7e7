/**
 * 3. A TPM quote taken in process (Tpm.quote through tpm2-tss and koffi, as the attestation
 * loop takes it: PCR read, quote, PCR read) beside running the tpm2_quote command against
 * the same swtpm with an ECC P-256 restricted signing key of the same algorithms, made once by
 * tpm2_createprimary (attestd's own AK is a stored key used with its authValue).
 *
 * swtpm has no resource manager and tpm2-tools leave their objects loaded, which would fill
 * its three transient slots; the tools' objects are flushed (untimed) before every command,
 * and the two sides run in separate blocks so that flush never touches the in-process AK.
 */
import { randomBytes } from 'node:crypto';
import { Tpm } from '../../daemon/evidence/tpm/tpm.js';
import type { HashAlg } from '../../daemon/verify/tpm-alg.js';
import { tempDir } from './processes.js';
import { startSwtpm, tpm2Ok } from './swtpm.js';
import type { Benchmark, Outcome } from './report.js';
import { msSince, nowNs, summarize } from './stats.js';

/** The daemon's selection under the benchmark policy: SHA-256 PCRs 0-7 and 16. */
const SELECTION: { alg: HashAlg; pcrs: number[] }[] = [{ alg: 'sha256', pcrs: [0, 1, 2, 3, 4, 5, 6, 7, 16] }];
const TOOL_SELECTION = 'sha256:0,1,2,3,4,5,6,7,16';
const AK_ATTRIBUTES = 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign';
const BLOCKS = 2;
const PER_BLOCK = 30;

async function inProcessBlock(tcti: string, qualifyingData: Buffer): Promise<number[]> {
  const tpm = await Tpm.open(tcti);
  try {
    // The first quote also creates the AK; that is start-up, not the steady state.
    await tpm.quote(qualifyingData, SELECTION);
    const samples: number[] = [];
    for (let i = 0; i < PER_BLOCK; i++) {
      const t = nowNs();
      const q = await tpm.quote(qualifyingData, SELECTION);
      samples.push(msSince(t));
      if (q.attest.length === 0 || q.signature.length === 0) throw new Error('empty quote');
    }
    return samples;
  } finally {
    await tpm.close();
  }
}

async function toolBlock(tcti: string, dir: string, qualifyingData: Buffer): Promise<number[]> {
  const samples: number[] = [];
  const args = ['tpm2_quote', '-c', 'ak.ctx', '-l', TOOL_SELECTION, '-q', qualifyingData.toString('hex'), '-m', 'quote.msg', '-s', 'quote.sig'];
  for (let i = 0; i < PER_BLOCK; i++) {
    await tpm2Ok(['tpm2_flushcontext', '-t'], tcti, dir);
    const t = nowNs();
    await tpm2Ok(args, tcti, dir);
    samples.push(msSince(t));
  }
  await tpm2Ok(['tpm2_flushcontext', '-t'], tcti, dir);
  return samples;
}

async function run(): Promise<Outcome> {
  const tpm = await startSwtpm();
  const dir = await tempDir('attestd-bench-quote-');
  const qualifyingData = randomBytes(32);
  await tpm2Ok(['tpm2_createprimary', '-C', 'e', '-G', 'ecc256:ecdsa-sha256:null', '-a', AK_ATTRIBUTES, '-c', 'ak.ctx'], tpm.tcti, dir);
  await tpm2Ok(['tpm2_flushcontext', '-t'], tpm.tcti, dir);
  const inProcess: number[] = [];
  const tool: number[] = [];
  for (let b = 0; b < BLOCKS; b++) {
    inProcess.push(...(await inProcessBlock(tpm.tcti, qualifyingData)));
    tool.push(...(await toolBlock(tpm.tcti, dir, qualifyingData)));
  }
  await tpm.stop();

  const a = summarize(inProcess);
  const c = summarize(tool);
  return {
    baseline: `tpm2_quote -c ak.ctx -l ${TOOL_SELECTION} (a new process per quote, wall time to exit), same swtpm`,
    figures: [
      { metric: 'quote p50', unit: 'ms', value: a.p50, baseline: c.p50, better: 'lower',
        target: { text: '>= 10x faster (ratio <= 0.1)', met: a.p50 * 10 <= c.p50 } },
      { metric: 'quote p99', unit: 'ms', value: a.p99, baseline: c.p99, better: 'lower' },
      { metric: 'quotes per second (1 / mean)', unit: '/s', value: 1000 / a.mean, baseline: 1000 / c.mean, better: 'higher' },
    ],
    notes: [
      'in process = PCR_Read + Quote + PCR_Read (the PCR values are read around the quote); the AK is already loaded',
      "the tools' AK has the same algorithms (tpm2_createprimary once; each tpm2_quote reloads its saved context)",
      `${BLOCKS} alternating blocks of ${PER_BLOCK} quotes each side`,
    ],
    details: { inProcess: a, tool: c, blocks: BLOCKS, perBlock: PER_BLOCK },
  };
}

export const quoteBench: Benchmark = { id: 'quote', title: '3. TPM quote in process vs the tpm2_quote command', run };

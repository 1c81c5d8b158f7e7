/**
 * npm run bench: attestd's benchmarks, each figure printed beside a baseline measured in the
 * same run. Progress goes to stderr; the table (or, with --json, one JSON document) to
 * stdout. Every process a benchmark starts is stopped before the run ends, also on failure
 * and on Ctrl-C. Missing a target does not fail the run; a benchmark that cannot run does
 * (exit code 1).
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { cleanup } from './processes.js';
import { renderJson, renderTable, type Benchmark, type RunReport } from './report.js';
import { leaseBench } from './lease.js';
import { signBench } from './sign.js';
import { quoteBench } from './quote.js';
import { memoryBench } from './memory.js';
import { revocationBench } from './revocation.js';
import { auditAppendBench } from './audit-append.js';
import { auditVerifyBench } from './audit-verify.js';
import { eventLogBench } from './evidence-eventlog.js';
import { imaBench } from './evidence-ima.js';
import { epochBench } from './evidence-epoch.js';
import { gpuBench } from './evidence-gpu.js';
import { resultBench } from './result.js';
import { governedBench } from './governed.js';
import { cvmBench } from './evidence-cvm.js';
import { msSince, nowNs } from './stats.js';

const BENCHMARKS: Benchmark[] = [leaseBench, signBench, quoteBench, memoryBench, revocationBench, auditAppendBench, auditVerifyBench,
  eventLogBench, imaBench, epochBench, gpuBench, cvmBench, resultBench, governedBench];

const HELP = `Usage: npm run bench -- [--json] [--only ID[,ID...]]

  --json       print one JSON document instead of the table
  --only IDS   run only these benchmarks: ${BENCHMARKS.map((b) => b.id).join(', ')}
`;

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ options: { json: { type: 'boolean' }, only: { type: 'string' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n${HELP}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  let selected = BENCHMARKS;
  if (values.only !== undefined) {
    const ids = values.only.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    const unknown = ids.filter((id) => !BENCHMARKS.some((b) => b.id === id));
    if (unknown.length > 0 || ids.length === 0) {
      process.stderr.write(`bench: unknown benchmark ${unknown.join(', ') || '(none given)'}\n${HELP}`);
      return 2;
    }
    selected = BENCHMARKS.filter((b) => ids.includes(b.id));
  }

  const report: RunReport = { startedAt: new Date().toISOString(), node: process.version, cpus: cpus().length, sections: [] };
  for (const b of selected) {
    process.stderr.write(`bench: ${b.title} ...\n`);
    const start = nowNs();
    try {
      const outcome = await b.run();
      report.sections.push({ id: b.id, title: b.title, ...outcome, seconds: msSince(start) / 1000 });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      process.stderr.write(`bench: ${b.id} failed: ${message}\n`);
      report.sections.push({ id: b.id, title: b.title, baseline: '-', figures: [], notes: [], error: message.split('\n')[0], seconds: msSince(start) / 1000 });
    } finally {
      // Whatever a benchmark left running (after a failure) is stopped before the next starts.
      await cleanup.runAll();
    }
  }
  process.stdout.write(values.json ? renderJson(report) : renderTable(report));
  return report.sections.some((s) => s.error) ? 1 : 0;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`bench: ${signal}, stopping what was started\n`);
    void cleanup.runAll().finally(() => process.exit(130));
  });
}

main().then(
  (code) => cleanup.runAll().then(() => process.exit(code)),
  (err) => {
    process.stderr.write(`bench: ${String(err)}\n`);
    void cleanup.runAll().finally(() => process.exit(1));
  },
);

/**
 * attestctl audit export DEST [--dir DIR]: a consistent snapshot of a live log for an auditor.
 * It reads the published checkpoint, finds the record that carries it, and copies every record
 * up to and including that one (sealed segments whole, the rest cut at that record), then the
 * checkpoint. Appends that race the copy are simply not included.
 */
import { copyFile, mkdir, open, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readLeaves } from '../audit/leaves.js';
import { CHECKPOINT_FILE, listSegments, segmentName } from '../audit/segments.js';
import { EXIT } from './exit-codes.js';
import { printJson } from './output.js';

export const AUDIT_EXPORT_HELP = `Usage: attestctl audit export DEST [--dir DIR] [--json]

Copies a consistent snapshot of the audit log in DIR (default /var/lib/attestd/audit) up to its
published checkpoint into DEST (created; must be empty), for \`attestctl audit verify DEST\`.`;

export async function auditExport(dest: string | undefined, dir: string, json: boolean): Promise<number> {
  if (!dest) {
    process.stderr.write(`attestctl: audit export needs DEST\n\n${AUDIT_EXPORT_HELP}\n`);
    return EXIT.USAGE;
  }
  const note = await readFile(join(dir, CHECKPOINT_FILE), 'utf8').catch(() => undefined);
  if (!note) {
    process.stderr.write(`attestctl: ${dir} has no published checkpoint yet\n`);
    return EXIT.FAILURE;
  }
  const leaves = await readLeaves(dir);
  const cp = leaves.checkpoints.find((c) => c.note === note);
  if (!cp) {
    process.stderr.write(`attestctl: the published checkpoint is not in the log\n`);
    return EXIT.FAILURE;
  }
  await mkdir(dest, { recursive: true });
  if ((await readdir(dest)).length > 0) {
    process.stderr.write(`attestctl: ${dest} is not empty\n`);
    return EXIT.USAGE;
  }
  const last = leaves.places[cp.seq]!;
  const listing = await listSegments(dir);
  for (const first of listing.sealed) {
    const name = segmentName(first, 'seg');
    if (name === last.segment) break;
    await copyFile(join(dir, name), join(dest, name));
    if (listing.ranges.has(first)) await copyFile(join(dir, segmentName(first, 'range')), join(dest, segmentName(first, 'range')));
  }
  // The segment holding the checkpoint record, cut right after it, becomes the open segment.
  const src = await open(join(dir, last.segment), 'r');
  try {
    const length = last.offset + last.length;
    const buf = Buffer.alloc(length);
    await src.read(buf, 0, length, 0);
    await writeFile(join(dest, last.segment.replace(/\.(seg|open)$/, '.open')), buf);
  } finally {
    await src.close();
  }
  await writeFile(join(dest, CHECKPOINT_FILE), note);
  if (json) printJson({ exported: dest, records: cp.seq + 1 });
  else process.stdout.write(`exported ${cp.seq + 1} records to ${dest}\n`);
  return EXIT.OK;
}

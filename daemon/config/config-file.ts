/**
 * /etc/attestd/config.yaml: the daemon's settings as a file (flags and environment override
 * it). Flat keys, strings only; an unknown key or a wrong type refuses the start with the
 * file, line and key, like a policy error.
 */
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isMap, isScalar } from 'yaml';
import { AttestdError } from '../base/errors.js';

export const CONFIG_KEYS = ['socket', 'socket_group', 'tcti', 'policy', 'state_dir', 'log_level', 'metrics', 'nvml', 'tsm_root', 'ek_ca', 'gpu_roots',
  'cvm_roots', 'audit_budget'] as const;
export type ConfigFile = Partial<Record<(typeof CONFIG_KEYS)[number], string>>;

export function readConfigFile(path: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new AttestdError('INVALID_ARGUMENT', `cannot read config ${path}: ${(err as Error).message}`);
  }
  if (text.length > 64 * 1024) throw new AttestdError('INVALID_ARGUMENT', `config ${path} is larger than 64 KiB`);
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const where = (offset: number | undefined) => {
    const p = lines.linePos(offset ?? 0);
    return `${path}:${p.line}:${p.col}`;
  };
  if (doc.errors.length > 0) throw new AttestdError('INVALID_ARGUMENT', `${where(doc.errors[0]!.pos[0])}: ${doc.errors[0]!.message.split('\n')[0]}`);
  if (doc.contents === null) return {};
  if (!isMap(doc.contents)) throw new AttestdError('INVALID_ARGUMENT', `${where(0)}: expected a mapping of settings`);
  const out: ConfigFile = {};
  for (const item of doc.contents.items) {
    const key = isScalar(item.key) ? String(item.key.value) : '';
    const at = where(isScalar(item.key) ? item.key.range?.[0] : 0);
    if (!(CONFIG_KEYS as readonly string[]).includes(key)) {
      throw new AttestdError('INVALID_ARGUMENT', `${at}: unknown setting "${key}"; expected one of ${CONFIG_KEYS.join(', ')}`);
    }
    if (!isScalar(item.value) || typeof item.value.value !== 'string') {
      throw new AttestdError('INVALID_ARGUMENT', `${at}: ${key}: expected a string`);
    }
    out[key as keyof ConfigFile] = item.value.value;
  }
  return out;
}

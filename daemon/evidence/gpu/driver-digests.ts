/**
 * Digests of the NVIDIA driver as loaded: the files of the nvidia* kernel modules listed in
 * /proc/modules and the GSP firmware files of the running driver version. All paths are read
 * below a configurable root (default '/') so that tests can use a fake tree; the paths in the
 * result are those inside the root ("/lib/modules/…"), so a measurement does not depend on
 * where the tree was mounted. Files are hashed by the native core on a worker thread.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, stat } from 'node:fs/promises';
import { release } from 'node:os';
import { join, posix } from 'node:path';
import { AttestdError } from '../../base/errors.js';
import { hashFile } from '../../native.js';
import { compareFiles, compareModules } from '../../verify/gpu/measurement-check.js';
import type { FileDigest, ModuleDigest } from '../../verify/gpu/measurement.js';

export interface DriverDigestOptions {
  /** Root of the file system to read; default '/'. */
  root?: string;
  /** Kernel release naming /lib/modules/<release>; default os.release(). */
  kernelRelease?: string;
  /**
   * Ask `modinfo -n NAME` first, taking its answer as a path inside root; default true only
   * when root is '/'. Otherwise, and for modules modinfo does not find, modules.dep of the
   * release is read, or, without one, the release's module folder is searched.
   */
  useModinfo?: boolean;
  modinfoPath?: string;
  modinfoTimeoutMs?: number;
}

const MAX_PROC_MODULES_BYTES = 1 << 20;
const MAX_MODULES_DEP_BYTES = 16 << 20;
const MAX_WALK_ENTRIES = 200_000;
const MAX_WALK_DEPTH = 12;
const MODULE_NAME = /^nvidia[A-Za-z0-9_-]{0,56}$/;
const MODULE_SUFFIXES = ['.ko', '.ko.xz', '.ko.zst', '.ko.gz'];
/** A driver version as NVIDIA prints it; it becomes a path component, so nothing else passes. */
const DRIVER_VERSION = /^[0-9]{1,5}(\.[0-9]{1,5}){1,3}$/;
const GSP_FIRMWARE = /^gsp[A-Za-z0-9_.-]*\.bin(\.xz|\.zst)?$/;

export function isDriverVersion(v: string): boolean {
  return DRIVER_VERSION.test(v);
}

async function readCapped(path: string, max: number): Promise<string | undefined> {
  try {
    const text = await readFile(path);
    if (text.length > max) throw new AttestdError('INVALID_ARGUMENT', `${path} exceeds ${max} bytes`);
    return text.toString('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Names of the nvidia* modules in /proc/modules text, sorted, each once. */
export function parseProcModules(text: string): string[] {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const name = line.split(' ', 1)[0] ?? '';
    if (MODULE_NAME.test(name)) names.add(name);
  }
  return [...names].sort();
}

/** The kernel's module name: dashes and underscores are the same to it. */
function moduleKey(fileName: string): string | undefined {
  const suffix = MODULE_SUFFIXES.find((s) => fileName.endsWith(s));
  return suffix === undefined ? undefined : fileName.slice(0, -suffix.length).replace(/-/g, '_');
}

function modinfo(name: string, o: DriverDigestOptions): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(o.modinfoPath ?? 'modinfo', ['-n', name],
      { timeout: o.modinfoTimeoutMs ?? 5000, maxBuffer: 64 * 1024, killSignal: 'SIGKILL' },
      (err, stdout) => {
        const path = String(stdout).trim();
        // Built-in modules print "(builtin)" or a name; only an absolute path is a file.
        resolve(!err && path.startsWith('/') && !path.includes('\n') ? path : undefined);
      });
  });
}

/** modules.dep maps each module file (relative to the release folder) to its dependencies. */
function fromModulesDep(text: string, moduleDir: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const line of text.split('\n')) {
    const rel = line.slice(0, line.indexOf(':'));
    const key = moduleKey(posix.basename(rel));
    if (key !== undefined && !found.has(key)) found.set(key, posix.join(moduleDir, posix.normalize(rel)));
  }
  return found;
}

/** A bounded walk for trees without modules.dep; the first path in sorted order wins. */
async function walkModules(root: string, moduleDir: string, wanted: Set<string>): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  let entries = 0;
  const visit = async (dir: string, depth: number): Promise<void> => {
    if (depth > MAX_WALK_DEPTH) return;
    const list = await readdir(join(root, dir), { withFileTypes: true }).catch(() => []);
    for (const e of list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (++entries > MAX_WALK_ENTRIES) return;
      const path = posix.join(dir, e.name);
      if (e.isDirectory()) await visit(path, depth + 1);
      const key = e.isFile() ? moduleKey(e.name) : undefined;
      if (key !== undefined && wanted.has(key) && !found.has(key)) found.set(key, path);
    }
  };
  await visit(moduleDir, 0);
  return found;
}

async function sha256(root: string, path: string): Promise<string> {
  return (await hashFile(join(root, path), 'sha256')).toString('hex');
}

/**
 * The loaded nvidia* modules with their files' SHA-256, sorted by name. A module
 * whose file cannot be found is listed with an empty path and digest, so a policy sees it.
 */
export async function collectModuleDigests(o: DriverDigestOptions = {}): Promise<ModuleDigest[]> {
  const root = o.root ?? '/';
  const text = await readCapped(join(root, 'proc/modules'), MAX_PROC_MODULES_BYTES);
  const names = parseProcModules(text ?? '');
  if (names.length === 0) return [];
  const moduleDir = posix.join('/lib/modules', o.kernelRelease ?? release());
  if (moduleDir.split('/').length !== 4) throw new AttestdError('INVALID_ARGUMENT', 'kernelRelease must be one path component');

  const paths = new Map<string, string>();
  if (o.useModinfo ?? root === '/') {
    for (const name of names) {
      const p = await modinfo(name, o);
      if (p !== undefined) paths.set(name, p);
    }
  }
  const missing = new Set(names.filter((n) => !paths.has(n)));
  if (missing.size > 0) {
    const dep = await readCapped(join(root, moduleDir, 'modules.dep'), MAX_MODULES_DEP_BYTES);
    const found = dep !== undefined ? fromModulesDep(dep, moduleDir) : await walkModules(root, moduleDir, missing);
    for (const name of missing) {
      const p = found.get(name);
      if (p !== undefined) paths.set(name, p);
    }
  }

  const out: ModuleDigest[] = [];
  for (const name of names) {
    const path = paths.get(name);
    out.push(path === undefined ? { name, path: '', sha256: '' } : { name, path, sha256: await sha256(root, path) });
  }
  return out.sort(compareModules);
}

/**
 * SHA-256 of every gsp*.bin file in /lib/firmware/nvidia/<driverVersion>/, sorted by path;
 * empty when that folder does not exist (drivers without GSP firmware).
 */
export async function collectFirmwareDigests(driverVersion: string, o: DriverDigestOptions = {}): Promise<FileDigest[]> {
  if (!DRIVER_VERSION.test(driverVersion)) {
    throw new AttestdError('INVALID_ARGUMENT', `driver version ${JSON.stringify(driverVersion.slice(0, 40))} is not N.N[.N[.N]]`);
  }
  const root = o.root ?? '/';
  const dir = posix.join('/lib/firmware/nvidia', driverVersion);
  let names: string[];
  try {
    names = await readdir(join(root, dir));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const firmware = names.filter((n) => GSP_FIRMWARE.test(n));
  if (firmware.length > 256) throw new AttestdError('INVALID_ARGUMENT', `${dir} holds more than 256 firmware files`);
  const out: FileDigest[] = [];
  for (const name of firmware) {
    const path = posix.join(dir, name);
    // stat follows symlinks, as distributions link firmware files between versions.
    if (!(await stat(join(root, path))).isFile()) continue;
    out.push({ path, sha256: await sha256(root, path) });
  }
  return out.sort(compareFiles);
}

/** The text of /proc/driver/nvidia/version with trailing whitespace trimmed; '' when absent. */
export async function readProcDriverVersion(o: DriverDigestOptions = {}): Promise<string> {
  const text = await readCapped(join(o.root ?? '/', 'proc/driver/nvidia/version'), 4096);
  return (text ?? '').trimEnd();
}

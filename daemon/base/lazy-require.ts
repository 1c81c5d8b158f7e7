/**
 * A dependency loaded on first use rather than at start: the daemon carries XML and inventory
 * libraries it needs only for some policies or once per session, and each costs megabytes of
 * resident memory for as long as the process lives once loaded.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export function lazyRequire<T>(id: string): () => T {
  let mod: T | undefined;
  return () => (mod ??= require(id) as T);
}

/**
 * Watchers: a holder's listeners on its lease, told of renewals, the expiry warning, and the
 * end of the lease (expired, released, revoked), after which the lease has none.
 */
import { AttestdError } from '../base/errors.js';
import type { LeaseLogFn } from './decisions.js';
import type { LiveLease } from './live-lease.js';
import type { LeaseEvent } from './types.js';

type Watched = Pick<LiveLease, 'watchers'>;

/** Adds a listener, at most `max` on one lease so one client cannot grow memory without limit; returns its cancel. */
export function addWatcher(lease: Watched, listener: (e: LeaseEvent) => void, max: number): () => void {
  if (lease.watchers.size >= max) throw new AttestdError('TOO_MANY_REQUESTS', 'too many watchers on this lease');
  lease.watchers.add(listener);
  return () => lease.watchers.delete(listener);
}

/** Tells every watcher; one that throws is logged, and the others are still told. */
export function tell(lease: Watched, event: LeaseEvent, log: LeaseLogFn): void {
  for (const w of lease.watchers) {
    try {
      w(event);
    } catch (err) {
      log('error', 'watcher failed', { err: String(err) });
    }
  }
}

/** Tells every watcher that the lease has ended, and lets them go. */
export function tellEnd(lease: Watched, event: LeaseEvent, log: LeaseLogFn): void {
  tell(lease, event, log);
  lease.watchers.clear();
}

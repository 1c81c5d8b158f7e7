/**
 * The daemon's side of systemd's service protocol: READY=1 after the first completed
 * appraisal, STATUS= lines with the state and epoch, WATCHDOG=1 only while attestation is
 * fresh (so a stalled attestation loop gets the daemon restarted), STOPPING=1 on shutdown.
 * Without NOTIFY_SOCKET (not under systemd) every call does nothing.
 */
import { sdNotify } from '../native.js';

export class Notifier {
  private readonly socket: string | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private ready = false;

  constructor(env: NodeJS.ProcessEnv = process.env, private readonly onError?: (err: unknown) => void) {
    this.socket = env.NOTIFY_SOCKET || undefined;
    // The watchdog interval is for the main pid only; half the timeout, as systemd advises.
    const usec = Number(env.WATCHDOG_USEC);
    const pid = env.WATCHDOG_PID ? Number(env.WATCHDOG_PID) : process.pid;
    this.watchdogMs = Number.isFinite(usec) && usec > 0 && pid === process.pid ? Math.max(100, usec / 2000) : undefined;
  }

  readonly watchdogMs: number | undefined;

  get enabled(): boolean {
    return this.socket !== undefined;
  }

  private send(message: string): void {
    if (!this.socket) return;
    try {
      sdNotify(this.socket, message);
    } catch (err) {
      this.onError?.(err);
    }
  }

  /** After the first completed appraisal, whatever its verdict: the daemon is serving. */
  readyOnce(status: string): void {
    if (this.ready) return;
    this.ready = true;
    this.send(`READY=1\nSTATUS=${status}`);
  }

  status(status: string): void {
    this.send(`STATUS=${status}`);
  }

  /** Pets the watchdog every half timeout, but only while `fresh()` says attestation is current. */
  startWatchdog(fresh: () => boolean): void {
    if (!this.socket || !this.watchdogMs) return;
    this.watchdog = setInterval(() => {
      if (fresh()) this.send('WATCHDOG=1');
    }, this.watchdogMs);
    this.watchdog.unref();
  }

  stopping(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.send('STOPPING=1');
  }
}

/**
 * Runs async jobs one at a time, in submission order. An ESYS context is not thread-safe
 * and the TPM serves one command at a time, so every call on a Tpm goes through one queue:
 * a job starts only after the previous one settled, whether it resolved or rejected.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(job: () => Promise<T>): Promise<T> {
    const result = this.tail.then(job);
    // The chain must not reject, or one failure would skip every later job.
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

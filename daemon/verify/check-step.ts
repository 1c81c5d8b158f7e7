/**
 * Running named checks in order and telling an observer each result, for verifiers whose
 * callers (the CLIs) print every check: a check that throws is reported failed, then the
 * error goes on up unchanged.
 */
export type CheckObserver<C extends string> = (check: C, passed: boolean, detail: string) => void;

export function checkStepper<C extends string>(observer?: CheckObserver<C>) {
  const notify = observer ?? ((): void => undefined);
  return <T>(check: C, run: () => T, detail: (v: T) => string = () => ''): T => {
    let value: T;
    try {
      value = run();
    } catch (err) {
      notify(check, false, err instanceof Error ? err.message : String(err));
      throw err;
    }
    notify(check, true, detail(value));
    return value;
  };
}

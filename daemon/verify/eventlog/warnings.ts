/**
 * Ordering checks that do not make a log malformed but that policy may act on. Firmware
 * extends EV_SEPARATOR into PCRs 0-7 when it hands over to the OS loader (PFP 3.3.4);
 * after that only the OS loader's own measurements belong there: the images it loads
 * (PCR 4), ExitBootServices and the GPT (PCR 5), and the authorities that verified those
 * images (PCR 7). Anything else is recorded as a warning per event.
 */
import { EV } from './event-types.js';
import type { EventLogWarning, TcgEvent } from './types.js';

const ALLOWED_AFTER_SEPARATOR: ReadonlyMap<number, ReadonlySet<number>> = new Map([
  [4, new Set<number>([EV.EFI_BOOT_SERVICES_APPLICATION, EV.EFI_BOOT_SERVICES_DRIVER, EV.EFI_ACTION])],
  [5, new Set<number>([EV.EFI_ACTION, EV.EFI_GPT_EVENT, EV.EFI_GPT_EVENT2])],
  [7, new Set<number>([EV.EFI_VARIABLE_AUTHORITY])],
]);

export function separatorWarnings(events: TcgEvent[]): EventLogWarning[] {
  const separated = new Set<number>();
  const out: EventLogWarning[] = [];
  for (const e of events) {
    if (e.type === EV.NO_ACTION || e.pcr > 7) continue;
    if (e.type === EV.SEPARATOR) {
      if (separated.has(e.pcr)) out.push({ event: e.index, message: `second separator in PCR ${e.pcr}` });
      separated.add(e.pcr);
      continue;
    }
    if (separated.has(e.pcr) && !ALLOWED_AFTER_SEPARATOR.get(e.pcr)?.has(e.type)) {
      out.push({ event: e.index, message: `event after separator in PCR ${e.pcr} (${e.typeName})` });
    }
  }
  return out;
}

import { Decimal } from '../common/money';

/** A stored version, as far as the versioning rule looks at it. */
export interface PriceSpan {
  id: string;
  inputPerMTok: string;
  outputPerMTok: string;
  cachedInputPerMTok: string | null;
  currency: string;
  effectiveFrom: Date;
  effectiveTo: Date | null;
}

/** A version an admin asks for. */
export type RequestedSpan = Omit<PriceSpan, 'id'>;

/**
 * What an override does to a model's history, decided from the versions it overlaps:
 * - nothing overlaps: the version is added (also for a model the catalog lacks);
 * - the same version again (same span, same prices): nothing changes, the PUT is a replay;
 * - only the open-ended version, which started before: it is closed at `effectiveFrom`, and when
 *   the override ends (`effectiveTo`), its prices resume from there as a new open-ended version,
 *   so a temporary price never leaves the model without one;
 * - anything else (a later version, a bounded one, one starting at the same instant): conflict.
 */
export type OverridePlan =
  | { kind: 'add' }
  | { kind: 'replay'; existing: PriceSpan }
  | { kind: 'supersede'; current: PriceSpan; resumeAt: Date | null }
  | { kind: 'conflict'; existing: PriceSpan };

const sameAmount = (a: string | null, b: string | null) => (a === null || b === null ? a === b : new Decimal(a).eq(b));
const sameInstant = (a: Date | null, b: Date | null) => (a === null || b === null ? a === b : a.getTime() === b.getTime());

/** `overlapping`: the model's versions whose span overlaps the requested one, oldest first. */
export function planOverride(overlapping: PriceSpan[], requested: RequestedSpan): OverridePlan {
  if (!overlapping.length) return { kind: 'add' };
  if (overlapping.length === 1) {
    const [only] = overlapping;
    const same =
      sameInstant(only.effectiveFrom, requested.effectiveFrom) && sameInstant(only.effectiveTo, requested.effectiveTo) &&
      sameAmount(only.inputPerMTok, requested.inputPerMTok) && sameAmount(only.outputPerMTok, requested.outputPerMTok) &&
      sameAmount(only.cachedInputPerMTok, requested.cachedInputPerMTok) && only.currency === requested.currency;
    if (same) return { kind: 'replay', existing: only };
    if (only.effectiveTo === null && only.effectiveFrom.getTime() < requested.effectiveFrom.getTime()) {
      return { kind: 'supersede', current: only, resumeAt: requested.effectiveTo };
    }
  }
  // Name the version that blocks: the first one at or after effectiveFrom, else the one containing it.
  const later = overlapping.find((version) => version.effectiveFrom.getTime() >= requested.effectiveFrom.getTime());
  return { kind: 'conflict', existing: later ?? overlapping[0] };
}

import { planOverride, type PriceSpan, type RequestedSpan } from './price-versioning';

const at = (iso: string) => new Date(iso);
const version = (id: string, from: string, to: string | null, input = '2.5'): PriceSpan => ({
  id, inputPerMTok: input, outputPerMTok: '10', cachedInputPerMTok: null, currency: 'USD',
  effectiveFrom: at(from), effectiveTo: to === null ? null : at(to),
});
const request = (from: string, to: string | null, input = '3'): RequestedSpan => ({
  inputPerMTok: input, outputPerMTok: '10', cachedInputPerMTok: null, currency: 'USD', effectiveFrom: at(from), effectiveTo: to === null ? null : at(to),
});

describe('planOverride: what a new version does to a model\'s history', () => {
  it('adds the version when nothing overlaps (a new model, or a gap in the history)', () => {
    expect(planOverride([], request('2026-01-01T00:00:00Z', null))).toEqual({ kind: 'add' });
  });

  it('closes the open-ended version that started earlier at effectiveFrom', () => {
    const current = version('a', '1970-01-01T00:00:00Z', null);
    expect(planOverride([current], request('2026-01-01T00:00:00Z', null))).toEqual({ kind: 'supersede', current, resumeAt: null });
  });

  it('a bounded override on the open-ended version resumes the old prices at effectiveTo', () => {
    const current = version('a', '1970-01-01T00:00:00Z', null);
    expect(planOverride([current], request('2026-01-01T00:00:00Z', '2026-02-01T00:00:00Z'))).toEqual({
      kind: 'supersede', current, resumeAt: at('2026-02-01T00:00:00Z'),
    });
  });

  it('the same version again is a replay, whatever the decimal spelling', () => {
    const stored = version('a', '2026-01-01T00:00:00Z', null, '3.000');
    expect(planOverride([stored], request('2026-01-01T00:00:00.000+00:00', null, '3'))).toEqual({ kind: 'replay', existing: stored });
  });

  it('refuses an override overlapping a later version, naming that version', () => {
    const base = version('a', '1970-01-01T00:00:00Z', '2026-03-01T00:00:00Z');
    const later = version('b', '2026-03-01T00:00:00Z', null);
    expect(planOverride([base, later], request('2026-02-01T00:00:00Z', null))).toEqual({ kind: 'conflict', existing: later });
    expect(planOverride([later], request('2026-02-01T00:00:00Z', null))).toEqual({ kind: 'conflict', existing: later });
  });

  it('refuses to cut a bounded version, or to replace one starting at the same instant with other prices', () => {
    const bounded = version('a', '2026-01-01T00:00:00Z', '2026-03-01T00:00:00Z');
    expect(planOverride([bounded], request('2026-02-01T00:00:00Z', '2026-02-15T00:00:00Z'))).toEqual({ kind: 'conflict', existing: bounded });
    const open = version('b', '2026-01-01T00:00:00Z', null);
    expect(planOverride([open], request('2026-01-01T00:00:00Z', null, '4'))).toEqual({ kind: 'conflict', existing: open });
  });
});

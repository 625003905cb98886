import { Decimal } from '../common/money';
import { median, scoreHour } from './anomaly-score';

const d = (...values: number[]) => values.map((value) => new Decimal(value));

describe('scoreHour', () => {
  it('scores against the median and MAD of the baseline, computed by hand', () => {
    // Baseline 8, 9, 10, 10, 11, 12, 40: median 10; deviations 2, 1, 0, 0, 1, 2, 30 → MAD 1.
    // scale = max(1.4826, 1, 0.1) = 1.4826; (20 − 10) / 1.4826 = 6.7449…
    const score = scoreHour(new Decimal(20), d(8, 9, 10, 10, 11, 12, 40), new Decimal(100), 'medium')!;
    expect(score.median.toString()).toBe('10');
    expect(score.mad.toString()).toBe('1');
    expect(score.scale.toString()).toBe('1.4826');
    expect(score.score).toBe(6.7449);
    expect(score.threshold).toBe(5);
    expect(score.isSpike).toBe(true);
    // The same hour is not a spike for a low sensitivity (threshold 7).
    expect(scoreHour(new Decimal(20), d(8, 9, 10, 10, 11, 12, 40), new Decimal(100), 'low')!.isSpike).toBe(false);
  });

  it('one wild day in the baseline does not mask a spike (the median and MAD ignore it)', () => {
    const score = scoreHour(new Decimal(30), d(10, 10, 11, 9, 10, 500, 10), new Decimal(1000), 'high')!;
    expect(score.median.toString()).toBe('10');
    expect(score.isSpike).toBe(true);
  });

  it('a steady baseline (MAD 0) needs a deviation of 10 % of the usual spend per unit of score', () => {
    // m = 50, MAD 0: scale = max(0, 5, 0.1) = 5.
    expect(scoreHour(new Decimal(60), d(50, 50, 50, 50, 50, 50, 50), new Decimal(100), 'high')!.score).toBe(2);
    expect(scoreHour(new Decimal(75), d(50, 50, 50, 50, 50, 50, 50), new Decimal(100), 'medium')!.isSpike).toBe(true);
  });

  it('a silent baseline: the floor is 0.1 % of the limit', () => {
    // m = 0, MAD 0, limit 5000: scale 5; 20 spent is a score of 4.
    const score = scoreHour(new Decimal(20), d(0, 0, 0, 0, 0, 0, 0), new Decimal(5000), 'high')!;
    expect(score.scale.toString()).toBe('5');
    expect(score.score).toBe(4);
    expect(score.isSpike).toBe(true);
    expect(scoreHour(new Decimal(20), d(0, 0, 0, 0, 0, 0, 0), new Decimal(5000), 'medium')!.isSpike).toBe(false);
  });

  it('a drop is never a spike, and under 3 baseline hours there is no judgement', () => {
    expect(scoreHour(new Decimal(0), d(10, 10, 10), new Decimal(100), 'high')!.isSpike).toBe(false);
    expect(scoreHour(new Decimal(1000), d(10, 10), new Decimal(100), 'high')).toBeUndefined();
  });

  it('median of an even count is the mean of the middle two, exactly', () => {
    expect(median(d(1, 2, 3, 4)).toString()).toBe('2.5');
    expect(median([new Decimal('0.1'), new Decimal('0.2')]).toString()).toBe('0.15');
  });
});

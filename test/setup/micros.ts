/** Money in micro-units (6 decimals) as BigInt, so a spec's expected sums are exact integers. */
export const micros = (amount: string): bigint => {
  const [whole, fraction = ''] = amount.split('.');
  return BigInt(whole) * 1_000_000n + BigInt(fraction.padEnd(6, '0'));
};

/** The decimal text of a micro-unit amount, without trailing zeros (as trim_scale prints it). */
export const fromMicros = (value: bigint): string => {
  const whole = value / 1_000_000n;
  const fraction = (value % 1_000_000n).toString().padStart(6, '0').replace(/0+$/, '');
  return fraction ? `${whole}.${fraction}` : `${whole}`;
};

/** Debiased exponential moving average (TensorBoard's smoothing): early values are not pulled toward 0. */
export function smooth(values: number[], weight: number): number[] {
  if (weight <= 0) return values.slice();
  let last = 0;
  let n = 0;
  return values.map((v) => {
    last = last * weight + (1 - weight) * v;
    n++;
    return last / (1 - Math.pow(weight, n));
  });
}

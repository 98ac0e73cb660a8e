/** Small float vector helpers (hot loops: plain for-loops over typed arrays). */

export function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

export function norm(a: Float32Array): number {
  return Math.sqrt(dot(a, a));
}

/** Unit direction and magnitude of a raw feature. */
export function toUnit(raw: ArrayLike<number>): { unit: Float32Array; magnitude: number } {
  const unit = Float32Array.from(raw);
  const magnitude = norm(unit);
  if (magnitude > 0) for (let i = 0; i < unit.length; i++) unit[i] /= magnitude;
  return { unit, magnitude };
}

/** a += s·b */
export function addScaled(a: Float32Array, b: Float32Array, s: number): void {
  for (let i = 0; i < a.length; i++) a[i] += s * b[i];
}

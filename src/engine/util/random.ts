/**
 * Seeded pseudo-random numbers. Every random choice the engine makes (data splits, shuffling,
 * dropout seeds, AdapterDrop levels, initialisation) goes through one of these, so that the same
 * seed on the same backend gives the same run.
 */
/**
 * The generator's state for a seed. splitmix32 scrambles small consecutive seeds into well-spread states.
 * (The dropout kernel, tf/kernels/dropout.wat, draws Rng's sequence from this state itself.)
 */
export function rngInitialState(seed: number): number {
  return (Math.floor(seed) ^ 0x9e3779b9) >>> 0;
}

/** The state after `draws` draws from `state` (the sequence is a counter: draw i hashes state + i * golden). */
export function rngStateAfter(state: number, draws: number): number {
  return (state + Math.imul(draws >>> 0, 0x9e3779b9)) >>> 0;
}

export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = rngInitialState(seed);
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    z = (z ^ (z >>> 16)) >>> 0;
    return z / 4294967296;
  }

  /** Skips n draws at once (as n calls of next would). */
  skip(n: number): void {
    this.state = rngStateAfter(this.state, n);
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** A 31-bit integer, for seeding tfjs ops that take a numeric seed. */
  seed(): number {
    return this.int(2147483647);
  }

  /** Fisher-Yates shuffle in place; returns the array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    let u = 0;
    while (u === 0) u = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
}

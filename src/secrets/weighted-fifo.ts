// A first-in-first-out cache bounded by the total weight of what it holds, not
// by its entries: a few large entries from a hostile namespace cost as much as
// many small ones. Used for compiled name patterns (weighed in RE2
// instructions) and parsed templates (weighed in source characters). The
// newest entry is always kept, whatever it weighs.
export class WeightedFifo<V> {
  private readonly entries = new Map<string, { value: V; weight: number }>();
  private total = 0;

  constructor(private readonly maxWeight: number) {}

  get(key: string): V | undefined {
    return this.entries.get(key)?.value;
  }

  set(key: string, value: V, weight: number): void {
    const previous = this.entries.get(key);
    if (previous) this.total -= previous.weight;
    this.entries.set(key, { value, weight });
    this.total += weight;
    while (this.total > this.maxWeight && this.entries.size > 1) {
      const [oldest, entry] = this.entries.entries().next().value as [string, { weight: number }];
      this.entries.delete(oldest);
      this.total -= entry.weight;
    }
  }
}

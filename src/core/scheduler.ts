/**
 * Ranking generators without asking every one for tasks (the seed's "priority range" idea).
 *
 * Generators are taken in order of the best priority they could produce (range.min). A generator is
 * asked what it has ready only while it could still beat the best answer so far; one whose whole
 * range beats every other candidate is leased from directly, without asking. Then the best answer
 * is leased from, and if it could not fill every free slot the next best is, and so on.
 */
export interface RankedGenerator {
  readonly key: string
  readonly priorityRange: {readonly min: number; readonly max: number}
}

export interface FillOperations<G> {
  /** Best priority ready now, or null. */
  ready(generator: G): Promise<number | null>
  /**
   * A cheap stand-in for ready(): a generator whose last lease came back full still has work at
   * about that priority, so asking again would cost a round trip for nothing.
   */
  hint?(generator: G): number | null
  /** Lease up to `limit` tasks; returns how many were leased. */
  lease(generator: G, limit: number): Promise<number>
}

export async function fillSlots<G extends RankedGenerator>(generators: readonly G[], free: number, ops: FillOperations<G>): Promise<number> {
  const pending = [...generators].sort((a, b) => a.priorityRange.min - b.priorityRange.min)
  const known: {generator: G; best: number}[] = []
  let leased = 0
  while (free > 0) {
    while (pending.length > 0) {
      const next = pending[0]
      const bestKnown = known.length ? Math.min(...known.map((k) => k.best)) : Infinity
      if (next.priorityRange.min >= bestKnown) break
      pending.shift()
      const rivals = [...pending, ...known.map((k) => k.generator)]
      if (rivals.every((r) => r.priorityRange.min > next.priorityRange.max)) {
        known.push({generator: next, best: next.priorityRange.min})
        break
      }
      const best = ops.hint?.(next) ?? (await ops.ready(next))
      if (best !== null) known.push({generator: next, best})
    }
    if (known.length === 0) break
    let pick = 0
    for (let i = 1; i < known.length; i++) if (known[i].best < known[pick].best) pick = i
    const [{generator}] = known.splice(pick, 1)
    const n = await ops.lease(generator, free)
    free -= n
    leased += n
  }
  return leased
}

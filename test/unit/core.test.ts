import {describe, expect, it} from 'vitest'

import {parseDuration} from '../../src/core/duration.js'
import {parsePriority, priorityBand} from '../../src/core/priority.js'
import {fillSlots} from '../../src/core/scheduler.js'
import {parseDatabaseUrl, redactUrl} from '../../src/storage/url.js'

describe('parseDuration', () => {
  it('parses units and compounds', () => {
    expect(parseDuration('500ms')).toBe(0.5)
    expect(parseDuration('30s')).toBe(30)
    expect(parseDuration('1h30m')).toBe(5400)
    expect(parseDuration('7d')).toBe(604_800)
    expect(parseDuration('12')).toBe(12)
  })
  it.each(['', 'abc', '5 minutes', '1h ago', '-5s', '5x'])('rejects %j with exit 2', (input) => {
    expect(() => parseDuration(input)).toThrow(expect.objectContaining({exit: 2}))
  })
})

describe('priorities', () => {
  it('accepts numbers and band names; lower is sooner', () => {
    expect(parsePriority('alerts')).toBe(1000)
    expect(parsePriority('IMPORT')).toBe(4000)
    expect(parsePriority('17')).toBe(17)
    expect(priorityBand(2600)).toBe('commit')
  })
  it.each(['0', '-1', 'soon', '1.5', '99999999999'])('rejects %j', (input) => {
    expect(() => parsePriority(input)).toThrow(expect.objectContaining({exit: 2}))
  })
})

describe('database URLs', () => {
  it('parses the three forms and masks passwords', () => {
    expect(parseDatabaseUrl('sqlite::memory:')).toMatchObject({kind: 'sqlite', path: ':memory:'})
    expect(parseDatabaseUrl('sqlite:x.db', '/tmp')).toMatchObject({kind: 'sqlite', path: '/tmp/x.db'})
    const my = parseDatabaseUrl('mysql://u:p%40ss@db.example:3307/app')
    expect(my).toMatchObject({kind: 'mysql', host: 'db.example', port: 3307, user: 'u', password: 'p@ss', database: 'app'})
    expect(my.url).toBe('mysql://u:***@db.example:3307/app')
    expect(redactUrl('failed mysql://root:hunter2@h/db now')).toBe('failed mysql://root:***@h/db now')
  })
  it.each(['postgres://x/y', 'mysql://host-only', 'sqlite:', 'nonsense'])('rejects %j with exit 2 and no password', (input) => {
    expect(() => parseDatabaseUrl(input)).toThrow(expect.objectContaining({exit: 2, code: 'E_BAD_URL'}))
  })
})

describe('fillSlots ranks generators by their priority range', () => {
  const gen = (key: string, min: number, max: number, ready: number | null, available: number) => ({key, priorityRange: {min, max}, readyAt: ready, available})
  type G = ReturnType<typeof gen>

  async function run(generators: G[], free: number) {
    const asked: string[] = []
    const leased: [string, number][] = []
    const total = await fillSlots(generators, free, {
      ready: async (g) => {
        asked.push(g.key)
        return g.readyAt
      },
      lease: async (g, limit) => {
        const n = Math.min(limit, g.available)
        leased.push([g.key, n])
        return n
      },
    })
    return {asked, leased, total}
  }

  it('leases from the most urgent generator first and falls through to the next', async () => {
    const r = await run([gen('gc', 5000, 5000, 5000, 1), gen('queue', 1, 1e9, 2000, 3)], 10)
    expect(r.leased).toEqual([
      ['queue', 3],
      ['gc', 1],
    ])
    expect(r.total).toBe(4)
  })

  it('does not ask a generator that cannot beat the best answer so far', async () => {
    const r = await run([gen('queue', 1, 1e9, 2000, 10), gen('gc', 5000, 5000, 5000, 1)], 5)
    expect(r.asked).toEqual(['queue'])
    expect(r.leased).toEqual([['queue', 5]])
  })

  it('leases without asking from a generator whose whole range beats every other', async () => {
    const r = await run([gen('alerts', 10, 20, null, 2), gen('gc', 5000, 5000, 5000, 1)], 2)
    expect(r.asked).toEqual([])
    expect(r.leased).toEqual([['alerts', 2]])
  })

  it('lets a reported priority beat a generator with a better range minimum', async () => {
    const r = await run([gen('a', 1, 9000, 8000, 5), gen('b', 100, 200, 150, 5)], 1)
    expect(r.leased).toEqual([['b', 1]])
  })

  it('stops when nothing is ready', async () => {
    const r = await run([gen('queue', 1, 1e9, null, 0), gen('gc', 5000, 5000, null, 0)], 4)
    expect(r.total).toBe(0)
    // gc is the last candidate left, so its lease (empty) is its answer.
    expect(r.asked).toEqual(['queue'])
    expect(r.leased).toEqual([['gc', 0]])
  })

  it('leases directly from a lone generator: its lease is the answer', async () => {
    const r = await run([gen('queue', 1, 1e9, null, 0)], 4)
    expect(r.asked).toEqual([])
    expect(r.leased).toEqual([['queue', 0]])
  })
})

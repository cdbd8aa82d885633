import {spawn} from 'node:child_process'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {describe, expect, it} from 'vitest'

import {DIALECTS} from './helpers/databases.js'

/**
 * Keeps `npm run bench` from rotting: runs the whole suite in smoke mode (tiny sizes, one run) and
 * checks that every scenario printed a well-formed JSON line for every dialect. No timing thresholds:
 * the figures are whatever this machine gives; only their shape is checked.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

const EXPECTED = [
  'ceiling.claim_delete',
  'ceiling.lease_archive',
  'ceiling.insert',
  'ceiling.roundtrip',
  'ceiling.handoff',
  'enqueue.bulk',
  'drain.c1',
  'drain.c16',
  'drain.c64',
  'drain.c16.yield',
  'drain.2proc.c16',
  'idle.same_process.p50',
  'idle.same_process.p95',
  'idle.other_process.p50',
  'idle.other_process.p95',
  'ceiling.round_sql',
  'round.cost',
  'ceiling.peek_sql',
  'peek.cost',
  'round.flatness',
  'peek.flatness',
  'ceiling.gc_delete',
  'gc.delete',
  'rss.growth',
  'rss.peak',
  'rss.heap_retained',
  'drain.long.c16',
  'drain.long.loop_stall_max',
]
const KEYS = ['name', 'dialect', 'params', 'runs', 'median', 'min', 'max', 'unit', 'ceiling_ratio']
const UNITS = ['tasks/s', 'rows/s', 'ms', 'MB', 'x']

function runSmoke(dialects: string[]): Promise<{code: number | null; stdout: string; stderr: string}> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts'], {
      cwd: ROOT,
      env: {...process.env, BENCH_SMOKE: '1', BENCH_DIALECTS: dialects.join(','), BENCH_RUNS: '', BENCH_SCENARIOS: '', BENCH_LARGE: ''},
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    child.on('error', reject)
    child.on('close', (code) => resolve({code, stdout, stderr}))
  })
}

describe('bench smoke', () => {
  const dialects = DIALECTS.filter((d) => !d.skip).map((d) => d.name)

  it(`prints one well-formed JSON line per scenario and dialect (${dialects.join(', ')})`, async () => {
    const {code, stdout, stderr} = await runSmoke(dialects)
    expect(code, stderr).toBe(0)
    const lines = stdout.split('\n').filter((line) => line.trim() !== '')
    const results = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
    for (const r of results) {
      expect(Object.keys(r).sort()).toEqual([...KEYS].sort())
      expect(typeof r.name).toBe('string')
      expect(dialects).toContain(r.dialect)
      expect(UNITS).toContain(r.unit)
      expect(Number.isInteger(r.runs) && (r.runs as number) >= 1).toBe(true)
      for (const key of ['median', 'min', 'max'] as const) expect(Number.isFinite(r[key]), `${String(r.name)} ${key}`).toBe(true)
      expect(r.min as number).toBeLessThanOrEqual(r.median as number)
      expect(r.median as number).toBeLessThanOrEqual(r.max as number)
      expect(r.ceiling_ratio === null || (typeof r.ceiling_ratio === 'number' && Number.isFinite(r.ceiling_ratio) && r.ceiling_ratio > 0)).toBe(true)
      expect(typeof r.params === 'object' && r.params !== null && !Array.isArray(r.params)).toBe(true)
      for (const value of Object.values(r.params as object)) expect(['number', 'string', 'boolean']).toContain(typeof value)
    }
    for (const dialect of dialects) {
      const names = new Set(results.filter((r) => r.dialect === dialect).map((r) => r.name))
      expect([...EXPECTED].filter((name) => !names.has(name)), `scenarios missing for ${dialect}`).toEqual([])
    }
    // The human table follows on stderr.
    expect(stderr).toContain('scenario')
  }, 120_000)
})

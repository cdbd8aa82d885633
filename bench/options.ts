/**
 * Bench options, from the environment and the command line:
 *
 *   BENCH_SMOKE=1              tiny sizes, one run, a few seconds per dialect (what `npm test` runs)
 *   BENCH_LARGE=1              adds the 1M-row backlog and the 1M-task RSS run (heavy)
 *   BENCH_DIALECTS=sqlite,mysql
 *   BENCH_RUNS=3               runs per scenario (median, min and max are over these)
 *   BENCH_SCENARIOS=drain,idle scenario groups or name prefixes; positional arguments do the same
 *   BENCH_MYSQL_URL            MariaDB/MySQL server to create scratch databases on
 *                              (default: TASKD_TEST_MYSQL_URL, else mysql://root@127.0.0.1:3306)
 */
export type Dialect = 'sqlite' | 'mysql'

export interface Sizes {
  /** Tasks per bulk-enqueue run. */
  enqueueTasks: number
  /** Tasks per drain run, by concurrency key. */
  drainTasks: Record<'c1' | 'c16' | 'c64' | 'yield' | 'procs', number>
  /** Enqueue→handler-start samples per idle-latency run. */
  idleSamples: number
  /** Backlog sizes for the scheduling-round and peek cost. */
  backlogs: number[]
  /** Timed calls per cost measurement. */
  costCalls: number
  /** Archive rows per GC run. */
  gcRows: number
  /** Tasks the long RSS run drains. */
  rssTasks: number
  /** Rows per ceiling run. */
  ceilingRows: number
  /** Queries per round-trip ceiling run. */
  roundtrips: number
}

export interface BenchOptions {
  smoke: boolean
  large: boolean
  runs: number
  dialects: Dialect[]
  /** True when BENCH_DIALECTS was given: an unreachable MariaDB is then an error, not a skip. */
  dialectsExplicit: boolean
  /** Empty: every scenario. */
  filters: string[]
  mysqlServerUrl: string
  sizes: Sizes
}

const SMOKE: Sizes = {
  enqueueTasks: 2_000,
  drainTasks: {c1: 100, c16: 300, c64: 300, yield: 200, procs: 300},
  idleSamples: 3,
  backlogs: [1_000, 3_000],
  costCalls: 10,
  gcRows: 3_000,
  rssTasks: 1_000,
  ceilingRows: 2_000,
  roundtrips: 200,
}

const FULL: Sizes = {
  enqueueTasks: 100_000,
  drainTasks: {c1: 2_000, c16: 20_000, c64: 20_000, yield: 5_000, procs: 20_000},
  idleSamples: 20,
  backlogs: [10_000, 100_000],
  costCalls: 200,
  gcRows: 100_000,
  rssTasks: 150_000,
  ceilingRows: 20_000,
  roundtrips: 5_000,
}

const LARGE: Partial<Sizes> = {
  backlogs: [10_000, 100_000, 1_000_000],
  rssTasks: 1_000_000,
}

const flag = (value: string | undefined): boolean => value !== undefined && value !== '' && value !== '0' && value.toLowerCase() !== 'false'

export function parseOptions(env: NodeJS.ProcessEnv = process.env, argv: readonly string[] = process.argv.slice(2)): BenchOptions {
  const smoke = flag(env.BENCH_SMOKE) || argv.includes('--smoke')
  const large = !smoke && (flag(env.BENCH_LARGE) || argv.includes('--large'))
  const runs = env.BENCH_RUNS ? Number(env.BENCH_RUNS) : smoke ? 1 : 3
  if (!Number.isInteger(runs) || runs < 1 || runs > 50) throw new Error(`BENCH_RUNS must be an integer from 1 to 50, got '${env.BENCH_RUNS}'`)
  const dialectList = (env.BENCH_DIALECTS ?? 'sqlite,mysql')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean)
  const dialects: Dialect[] = []
  for (const d of dialectList) {
    const name = d === 'mariadb' ? 'mysql' : d
    if (name !== 'sqlite' && name !== 'mysql') throw new Error(`unknown dialect '${d}' in BENCH_DIALECTS: expected sqlite and/or mysql`)
    if (!dialects.includes(name)) dialects.push(name)
  }
  const filters = [...(env.BENCH_SCENARIOS ?? '').split(','), ...argv.filter((a) => !a.startsWith('--'))].map((s) => s.trim()).filter(Boolean)
  const base = smoke ? SMOKE : FULL
  return {
    smoke,
    large,
    runs,
    dialects,
    dialectsExplicit: env.BENCH_DIALECTS !== undefined,
    filters,
    mysqlServerUrl: env.BENCH_MYSQL_URL ?? env.TASKD_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306',
    sizes: large ? {...base, ...LARGE} : base,
  }
}

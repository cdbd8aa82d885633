/**
 * `npm run bench`: runs the scenarios on each dialect and prints one JSON line per result on stdout,
 * then a human table on stderr. Options: see options.ts and BENCH.md.
 */
import os from 'node:os'

import Database from 'better-sqlite3'

import {connectRawMysql, createBenchDatabase, probeMysql, type BenchDatabase} from './databases.js'
import {parseOptions, type BenchOptions, type Dialect} from './options.js'
import {humanTable, jsonLine, type BenchResult} from './report.js'
import {SCENARIO_GROUPS, groupSelected} from './scenarios.js'

const progress = (message: string) => process.stderr.write(`[bench] ${message}\n`)

async function environment(options: BenchOptions): Promise<Record<string, string>> {
  const env: Record<string, string> = {
    date: new Date().toISOString(),
    mode: options.smoke ? 'smoke' : options.large ? 'full+large' : 'full',
    runs: String(options.runs),
    node: process.version,
    cpus: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'unknown'}`,
    memory: `${Math.round(os.totalmem() / 1_073_741_824)} GiB`,
    platform: `${os.platform()} ${os.release()}`,
    load: os.loadavg().map((l) => l.toFixed(2)).join(' '),
  }
  const memory = new Database(':memory:')
  env.sqlite = (memory.prepare('select sqlite_version() as v').get() as {v: string}).v
  memory.close()
  if (options.dialects.includes('mysql')) {
    const url = new URL(options.mysqlServerUrl)
    const conn = await connectRawMysql({host: url.hostname, port: Number(url.port || 3306), user: decodeURIComponent(url.username || 'root'), password: decodeURIComponent(url.password)})
    const [rows] = await conn.query('SELECT VERSION() AS v, @@innodb_flush_log_at_trx_commit AS f, @@innodb_buffer_pool_size AS b')
    const row = (rows as {v: string; f: number; b: number}[])[0]
    env.mysql = `${row.v} (innodb_flush_log_at_trx_commit=${row.f}, buffer pool ${Math.round(Number(row.b) / 1_048_576)} MiB)`
    await conn.end()
  }
  return env
}

const open = new Set<BenchDatabase>()

async function dropAll(): Promise<void> {
  for (const db of open) {
    open.delete(db)
    await db.drop().catch((error: unknown) => progress(`could not drop the ${db.dialect} bench database: ${(error as Error).message}`))
  }
}

async function runDialect(options: BenchOptions, dialect: Dialect, emit: (r: BenchResult) => void): Promise<void> {
  const db = await createBenchDatabase(dialect, options.mysqlServerUrl)
  open.add(db)
  try {
    const ctx = {options, dialect, db, ceilings: new Map<string, BenchResult>(), progress: (m: string) => progress(`${dialect}: ${m}`)}
    for (const group of SCENARIO_GROUPS) {
      if (!groupSelected(options, group)) continue
      const started = Date.now()
      for (const r of await group.run(ctx)) emit(r)
      progress(`${dialect}: ${group.group} done in ${((Date.now() - started) / 1000).toFixed(1)} s`)
    }
  } finally {
    open.delete(db)
    await db.drop()
  }
}

async function main(): Promise<number> {
  const options = parseOptions()
  if (options.dialects.includes('mysql')) {
    const problem = await probeMysql(options.mysqlServerUrl)
    if (problem) {
      if (options.dialectsExplicit) {
        progress(`MariaDB at ${options.mysqlServerUrl.replace(/:[^:@/]*@/, ':***@')} is unreachable (${problem}): set BENCH_MYSQL_URL or drop mysql from BENCH_DIALECTS`)
        return 1
      }
      progress(`!!! MariaDB is unreachable (${problem}): SKIPPING the mysql dialect`)
      options.dialects = options.dialects.filter((d) => d !== 'mysql')
    }
  }
  const env = await environment(options)
  progress(Object.entries(env).map(([k, v]) => `${k}: ${v}`).join('\n[bench] '))
  const started = Date.now()
  const results: BenchResult[] = []
  const emit = (r: BenchResult) => {
    results.push(r)
    process.stdout.write(jsonLine(r) + '\n')
  }
  for (const dialect of options.dialects) await runDialect(options, dialect, emit)
  process.stderr.write(`\n${humanTable(results)}\n`)
  progress(`${results.length} results in ${((Date.now() - started) / 1000).toFixed(1)} s (${env.mode} mode); load average now ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`)
  return 0
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    progress(`${signal}: dropping the bench databases`)
    void dropAll().finally(() => process.exit(130))
  })
}

main()
  .then((code) => {
    process.exitCode = code
  })
  .catch(async (error: unknown) => {
    progress(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
    await dropAll()
    process.exitCode = 1
  })

/**
 * Where the time goes in the drain path: `npx tsx bench/profile.ts [--dialect mysql|sqlite]
 * [--tasks N] [--concurrency C] [--cpu-prof FILE] [--yield]` (--yield: the handler returns on the next
 * event-loop turn, as one awaiting I/O would, instead of at once).
 *
 * Drains N no-op tasks with one in-process daemon (the drain.cC scenario) while
 * - counting every statement the driver receives, by shape (the driver's entry point is wrapped:
 *   better-sqlite3's prepare, which kysely calls once per query; mysql2's Connection.query), with
 *   the time each spent in the driver;
 * - recording a V8 CPU profile of the drain only (node:inspector; same format as `node --cpu-prof`),
 *   summarised by where the self time lands (taskd, kysely, driver, node internals, GC, idle);
 * - measuring the CPU the node process and (when readable) the MariaDB server used.
 */
import {readFileSync, writeFileSync} from 'node:fs'
import {Session} from 'node:inspector/promises'
import {execFileSync} from 'node:child_process'
import os from 'node:os'

import Database from 'better-sqlite3'
import mysql from 'mysql2'

import {Daemon} from '../src/daemon/daemon.js'
import {queueGenerator} from '../src/generators/queue/generator.js'
import {createBenchDatabase} from './databases.js'
import {countingNoop} from './drain.js'
import type {Dialect} from './options.js'
import {nowMs} from './stats.js'

interface Args {
  dialect: Dialect
  tasks: number
  concurrency: number
  cpuProf: string | null
  server: string
  yieldTurn: boolean
}

function parseArgs(argv: readonly string[]): Args {
  const value = (name: string) => {
    const i = argv.indexOf(name)
    return i >= 0 ? argv[i + 1] : undefined
  }
  const dialect = (value('--dialect') ?? 'mysql') as Dialect
  if (dialect !== 'sqlite' && dialect !== 'mysql') throw new Error(`--dialect must be sqlite or mysql`)
  return {
    dialect,
    tasks: Number(value('--tasks') ?? 20_000),
    concurrency: Number(value('--concurrency') ?? 16),
    cpuProf: value('--cpu-prof') ?? null,
    yieldTurn: argv.includes('--yield'),
    server: process.env.BENCH_MYSQL_URL ?? process.env.TASKD_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306',
  }
}

// ---------------------------------------------------------------------------------------------- query counting

interface Shape {
  count: number
  ms: number
}

const shapes = new Map<string, Shape>()
let counting = false

/** A statement's shape: literals and placeholder lists folded, so `id in (?,?,?)` of any length is one shape. */
function shapeOf(sql: string): string {
  return sql
    .replace(/\s+/g, ' ')
    .replace(/\((?:\s*\?\s*,)*\s*\?\s*\)/g, '(?…)')
    .replace(/when \? then \S+ /gi, '')
    .replace(/'[^']*'/g, "'…'")
    .replace(/\b\d+\b/g, 'N')
    .trim()
    .slice(0, 150)
}

function record(sql: string, ms: number) {
  if (!counting) return
  const key = shapeOf(sql)
  const s = shapes.get(key) ?? {count: 0, ms: 0}
  s.count++
  s.ms += ms
  shapes.set(key, s)
}

function instrumentDrivers() {
  const prepare = Database.prototype.prepare
  Database.prototype.prepare = function (this: Database.Database, source: string) {
    const start = nowMs()
    const statement = prepare.call(this, source)
    // kysely runs the statement at once; time prepare + run by wrapping the two it uses.
    const all = statement.all
    const run = statement.run
    statement.all = ((...params: unknown[]) => {
      const rows: unknown = Reflect.apply(all, statement, params)
      record(source, nowMs() - start)
      return rows
    }) as typeof all
    statement.run = ((...params: unknown[]) => {
      const result: unknown = Reflect.apply(run, statement, params)
      record(source, nowMs() - start)
      return result
    }) as typeof run
    return statement
  } as typeof prepare

  type QueryCallback = (error: unknown, result: unknown, fields: unknown) => void
  const proto = mysql.Connection.prototype as unknown as {query: (sql: string, values: unknown, cb: QueryCallback) => unknown}
  const query = proto.query
  proto.query = function (this: unknown, sql: string, values: unknown, cb: QueryCallback) {
    if (typeof sql !== 'string' || typeof cb !== 'function') return query.call(this, sql, values, cb)
    const start = nowMs()
    return query.call(this, sql, values, (error, result, fields) => {
      record(sql, nowMs() - start)
      cb(error, result, fields)
    })
  }
}

// ---------------------------------------------------------------------------------------------- CPU profile

interface ProfileNode {
  id: number
  callFrame: {functionName: string; url: string; lineNumber: number}
  hitCount?: number
  children?: number[]
}

interface CpuProfile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples?: number[]
  timeDeltas?: number[]
}

function category(node: ProfileNode): string {
  const {url, functionName} = node.callFrame
  if (!url) {
    if (functionName.startsWith('(')) return functionName
    return '(native: V8 builtins and addons)'
  }
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg) return pkg[1]
  const src = /\/(src\/.*|bench\/.*)$/.exec(url)
  if (src) return `taskd ${src[1].replace(/\?.*$/, '')}`
  if (url.startsWith('node:')) return 'node internals'
  return url
}

function summarizeProfile(profile: CpuProfile) {
  const samples = profile.samples ?? []
  const totalMs = (profile.endTime - profile.startTime) / 1000
  const perSample = samples.length ? totalMs / samples.length : 0
  const byCategory = new Map<string, number>()
  const byFunction = new Map<string, number>()
  for (const node of profile.nodes) {
    const ms = (node.hitCount ?? 0) * perSample
    if (ms === 0) continue
    const cat = category(node)
    byCategory.set(cat, (byCategory.get(cat) ?? 0) + ms)
    const fn = `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(src|bench)\//, '$1/')}:${node.callFrame.lineNumber + 1}`
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + ms)
  }
  const top = (m: Map<string, number>, n: number) => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n)
  return {totalMs, byCategory: top(byCategory, 40), byFunction: top(byFunction, 30)}
}

// ---------------------------------------------------------------------------------------------- server CPU

/** MariaDB server CPU seconds so far (utime + stime), or null when the process is not readable. */
function serverCpuSeconds(): number | null {
  try {
    const pid = execFileSync('pgrep', ['-x', 'mariadbd'], {encoding: 'utf8'}).trim().split('\n')[0] || execFileSync('pgrep', ['-x', 'mysqld'], {encoding: 'utf8'}).trim().split('\n')[0]
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return null
  }
}

// ---------------------------------------------------------------------------------------------- main

async function main() {
  const args = parseArgs(process.argv.slice(2))
  instrumentDrivers()
  const db = await createBenchDatabase(args.dialect, args.server)
  let report = ''
  try {
    await db.fillTasks(args.tasks)
    const noop = countingNoop(args.tasks, {yieldTurn: args.yieldTurn})
    const daemon = new Daemon({storage: db.storage, generators: [queueGenerator], concurrency: args.concurrency, handlers: noop.handlers})
    const session = new Session()
    session.connect()
    await session.post('Profiler.enable')
    await session.post('Profiler.setSamplingInterval', {interval: 100})
    await session.post('Profiler.start')
    counting = true
    const cpu = process.cpuUsage()
    const server = serverCpuSeconds()
    const start = nowMs()
    await daemon.start()
    await noop.allRan
    await daemon.stop({graceSeconds: 5})
    const ms = nowMs() - start
    counting = false
    const used = process.cpuUsage(cpu)
    const serverAfter = serverCpuSeconds()
    const {profile} = (await session.post('Profiler.stop')) as {profile: CpuProfile}
    session.disconnect()
    if (args.cpuProf) writeFileSync(args.cpuProf, JSON.stringify(profile))

    const lines: string[] = []
    const out = (line = '') => void lines.push(line)
    out(`# drain ${args.tasks} tasks, ${args.dialect}, concurrency ${args.concurrency}${args.yieldTurn ? ', handler yields one turn' : ''}: ${(ms / 1000).toFixed(2)} s, ${Math.round((args.tasks * 1000) / ms)} tasks/s (load ${os.loadavg()[0].toFixed(2)})`)
    out(`node CPU ${((used.user + used.system) / 1e6).toFixed(2)} s (${(((used.user + used.system) / 1e3 / ms) * 100).toFixed(0)}% of one core)` + (server !== null && serverAfter !== null ? `, MariaDB server CPU ${(serverAfter - server).toFixed(2)} s (${(((serverAfter - server) * 1e5) / ms).toFixed(0)}% of one core)` : ''))
    out(`stats ${JSON.stringify(daemon.stats)}`)
    out()
    const totalQueries = [...shapes.values()].reduce((a, s) => a + s.count, 0)
    const totalQueryMs = [...shapes.values()].reduce((a, s) => a + s.ms, 0)
    out(`## statements: ${totalQueries} = ${(totalQueries / args.tasks).toFixed(3)} per task; summed driver time ${(totalQueryMs / 1000).toFixed(2)} s (statements overlap on a pool)`)
    out('| per task | count | mean ms | statement |')
    out('|---:|---:|---:|---|')
    for (const [key, s] of [...shapes.entries()].sort((a, b) => b[1].count - a[1].count)) {
      out(`| ${(s.count / args.tasks).toFixed(3)} | ${s.count} | ${(s.ms / s.count).toFixed(3)} | \`${key.replaceAll('|', '\\|')}\` |`)
    }
    out()
    const summary = summarizeProfile(profile)
    out(`## CPU profile: ${(summary.totalMs / 1000).toFixed(2)} s sampled; self time by where it lands`)
    out('| ms | share | where |')
    out('|---:|---:|---|')
    for (const [cat, v] of summary.byCategory) out(`| ${v.toFixed(0)} | ${((v / summary.totalMs) * 100).toFixed(1)}% | ${cat} |`)
    out()
    out('## top functions by self time')
    out('| ms | share | function |')
    out('|---:|---:|---|')
    for (const [fn, v] of summary.byFunction) out(`| ${v.toFixed(0)} | ${((v / summary.totalMs) * 100).toFixed(1)}% | \`${fn}\` |`)
    report = lines.join('\n') + '\n'
  } finally {
    await db.drop()
  }
  // Written after the database is dropped, so a closed pipe (`| head`) cannot leave it behind.
  process.stdout.on('error', () => undefined)
  process.stdout.write(report)
}

await main()

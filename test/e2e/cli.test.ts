/**
 * End-to-end: the built CLI (`bin/run.js` over `dist/`, so `npm run build` first) spawned as a user
 * would run it, in a temp working directory, against SQLite and MariaDB.
 */
import {randomBytes} from 'node:crypto'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {sql} from 'kysely'
import {createConnection} from 'mysql2/promise'
import {afterAll, beforeAll, describe, expect, it, vi} from 'vitest'

import {MAX_DATA_BYTES, enqueueTask} from '../../src/generators/queue/enqueue.js'
import {ARCHIVE_RESULT} from '../../src/storage/schema.js'
import {parseDatabaseUrl} from '../../src/storage/url.js'
import {killLeftovers, removeTempDirs, runCli, runCliOk, tableNames, tempDir, withStorage, type CliResult} from '../helpers/cli.js'
import {DIALECTS, createTestDatabase, type TestDatabase} from '../helpers/databases.js'

// Every test is a chain of CLI processes (about 0.4 s of CPU each) and tests run concurrently: on a
// busy two-core machine a chain can take minutes. These are safety nets for hangs, not speed limits.
vi.setConfig({testTimeout: 240_000, hookTimeout: 120_000})

const databases: TestDatabase[] = []
async function freshDatabase(dialect: 'sqlite' | 'mysql'): Promise<TestDatabase> {
  const database = await createTestDatabase(dialect)
  databases.push(database)
  return database
}

afterAll(async () => {
  killLeftovers()
  for (const database of databases.splice(0)) await database.drop()
  removeTempDirs()
})

const lines = (text: string) => text.split('\n').filter((line) => line.trim() !== '')
const STACK_FRAME = /^\s+at /m

interface DbStatus {
  database: string
  dialect: string
  migrations: {name: string; applied: boolean; appliedAt: string | null}[]
  pending: number
}
interface DbMigrate {
  database: string
  dryRun: boolean
  applied: string[]
  pending: string[]
}

describe.concurrent.each(DIALECTS)('db status / db migrate on a fresh $name database', ({name, skip}) => {
  it.skipIf(skip)('reports pending migrations, dry-runs without changes, applies once, then is a no-op', async () => {
    const cwd = tempDir()
    // SQLite: the embedded default in a directory with no config at all; MySQL: --database.
    const database = name === 'mysql' ? await freshDatabase('mysql') : null
    const url = database?.url ?? `sqlite:${path.join(cwd, '.taskd', 'taskd.sqlite')}`
    const dbArgs = database ? ['--database', database.url] : []

    const before = await runCliOk<DbStatus>(['db', 'status', '--json', ...dbArgs], {cwd})
    expect(before.dialect).toBe(name)
    // The URL as printed: absolute SQLite path, or MySQL with any password masked.
    expect(before.database).toBe(parseDatabaseUrl(url).url)
    if (name === 'sqlite') expect(existsSync(path.join(cwd, '.taskd'))).toBe(true)
    expect(before.migrations.length).toBeGreaterThan(0)
    expect(before.pending).toBe(before.migrations.length)
    const all = before.migrations.map((m) => m.name)
    expect(await tableNames(url)).toEqual([])

    if (name === 'mysql') {
      // MySQL never migrates by surprise: a command that needs the schema says what to run.
      const behind = await runCli(['status', ...dbArgs], {cwd})
      expect(behind.code).toBe(1)
      expect(behind.stdout).toBe('')
      expect(lines(behind.stderr)).toHaveLength(1)
      expect(behind.stderr).toContain('taskd db migrate')
      const behindJson = await runCli(['status', '--json', ...dbArgs], {cwd})
      expect(behindJson.code).toBe(1)
      expect(behindJson.json).toMatchObject({error: {code: 'E_SCHEMA_BEHIND'}})
      expect(await tableNames(url)).toEqual([])
    }

    const dryRun = await runCliOk<DbMigrate>(['db', 'migrate', '--dry-run', '--json', ...dbArgs], {cwd})
    expect(dryRun).toMatchObject({dryRun: true, pending: all, applied: all})
    expect(await tableNames(url)).toEqual([])
    expect((await runCliOk<DbStatus>(['db', 'status', '--json', ...dbArgs], {cwd})).pending).toBe(all.length)

    const migrate = await runCliOk<DbMigrate>(['db', 'migrate', '--json', ...dbArgs], {cwd})
    expect(migrate).toMatchObject({dryRun: false, applied: all, pending: []})
    const tables = await tableNames(url)
    expect(tables).toEqual(expect.arrayContaining(['taskd_migration', 'taskd_tasks', 'taskd_task_archive', 'taskd_daemons']))

    const after = await runCliOk<DbStatus>(['db', 'status', '--json', ...dbArgs], {cwd})
    expect(after.pending).toBe(0)
    expect(after.migrations.every((m) => m.applied && m.appliedAt)).toBe(true)

    const again = await runCliOk<DbMigrate>(['db', 'migrate', '--json', ...dbArgs], {cwd})
    expect(again).toMatchObject({dryRun: false, applied: [], pending: []})
    expect(await tableNames(url)).toEqual(tables)
    const rerunStatus = await runCliOk<DbStatus>(['db', 'status', '--json', ...dbArgs], {cwd})
    expect(rerunStatus.migrations).toEqual(after.migrations)

    const status = await runCliOk<{database: string; queue: {ready: number}}>(['status', '--json', ...dbArgs], {cwd})
    expect(status.queue.ready).toBe(0)
  })
})

describe.concurrent('the SQLite default creates its own schema', () => {
  it('lets `status` run in a fresh directory without `db migrate`', async () => {
    const cwd = tempDir()
    const status = await runCliOk<{database: string; daemons: unknown[]}>(['status', '--json'], {cwd})
    expect(status.database).toBe(`sqlite:${path.join(cwd, '.taskd', 'taskd.sqlite')}`)
    expect(status.daemons).toEqual([])
    expect((await runCliOk<DbStatus>(['db', 'status', '--json'], {cwd})).pending).toBe(0)
  })
})

describe.concurrent('configuration precedence', () => {
  const databaseOf = async (cwd: string, args: string[] = [], env: Record<string, string | undefined> = {}) =>
    (await runCliOk<DbStatus>(['db', 'status', '--json', ...args], {cwd, env})).database

  it('--database beats TASKD_DATABASE_URL beats the config module beats the default', async () => {
    const cwd = tempDir()
    const file = (n: string) => path.join(cwd, n)
    expect(await databaseOf(cwd)).toBe(`sqlite:${file('.taskd/taskd.sqlite')}`)

    writeFileSync(file('taskd.config.mjs'), `export default {database: 'sqlite:from-config.sqlite'}\n`)
    expect(await databaseOf(cwd)).toBe(`sqlite:${file('from-config.sqlite')}`)

    const env = {TASKD_DATABASE_URL: `sqlite:${file('from-env.sqlite')}`}
    expect(await databaseOf(cwd, [], env)).toBe(`sqlite:${file('from-env.sqlite')}`)
    expect(await databaseOf(cwd, ['--database', `sqlite:${file('from-flag.sqlite')}`], env)).toBe(`sqlite:${file('from-flag.sqlite')}`)
    expect(await databaseOf(cwd, ['-d', `sqlite:${file('from-flag.sqlite')}`], env)).toBe(`sqlite:${file('from-flag.sqlite')}`)
  })

  it('also finds taskd.config.js (ESM package scope) and exports by name', async () => {
    const cwd = tempDir()
    writeFileSync(path.join(cwd, 'package.json'), '{"type": "module"}\n')
    writeFileSync(path.join(cwd, 'taskd.config.js'), `export const database = 'sqlite:named.sqlite'\n`)
    expect(await databaseOf(cwd)).toBe(`sqlite:${path.join(cwd, 'named.sqlite')}`)
  })

  it('--config PATH and TASKD_CONFIG load a module from elsewhere, ahead of the working directory one', async () => {
    const cwd = tempDir()
    const elsewhere = tempDir()
    writeFileSync(path.join(cwd, 'taskd.config.mjs'), `export default {database: 'sqlite:${path.join(cwd, 'local.sqlite')}'}\n`)
    const module = path.join(elsewhere, 'shared-config.mjs')
    writeFileSync(module, `export default {database: 'sqlite:${path.join(elsewhere, 'shared.sqlite')}'}\n`)
    const shared = `sqlite:${path.join(elsewhere, 'shared.sqlite')}`
    expect(await databaseOf(cwd, ['--config', module])).toBe(shared)
    expect(await databaseOf(cwd, [], {TASKD_CONFIG: module})).toBe(shared)
    // Relative to the working directory.
    expect(await databaseOf(cwd, ['--config', path.relative(cwd, module)])).toBe(shared)
    // The flag still beats the module.
    expect(await databaseOf(cwd, ['--config', module, '--database', 'sqlite:flag.sqlite'])).toBe(`sqlite:${path.join(cwd, 'flag.sqlite')}`)
  })

  it.skipIf(DIALECTS[1].skip)('takes a MySQL URL with a password from the config module and never prints the password', async () => {
    const cwd = tempDir()
    const database = await freshDatabase('mysql')
    const target = parseDatabaseUrl(database.url)
    if (target.kind !== 'mysql') throw new Error('expected a MySQL URL')
    const user = `taskd_e2e_${process.pid}`
    const password = `pw-${randomBytes(6).toString('hex')}`
    const admin = await createConnection({host: target.host, port: target.port, user: target.user, password: target.password})
    try {
      await admin.query(`CREATE USER ?@'%' IDENTIFIED BY ?`, [user, password])
      await admin.query(`GRANT ALL ON \`${target.database}\`.* TO ?@'%'`, [user])
      const url = `mysql://${user}:${password}@${target.host}:${target.port}/${target.database}`
      writeFileSync(path.join(cwd, 'taskd.config.mjs'), `export default {database: ${JSON.stringify(url)}}\n`)
      const text = await runCli(['db', 'status'], {cwd})
      expect(text.code, text.stderr).toBe(0)
      expect(text.stdout).toContain(`Database: mysql://${user}:***@${target.host}:${target.port}/${target.database} (mysql)`)
      const json = await runCli(['db', 'status', '--json'], {cwd})
      expect(json.json).toMatchObject({dialect: 'mysql', database: `mysql://${user}:***@${target.host}:${target.port}/${target.database}`})
      for (const output of [text.stdout, text.stderr, json.stdout, json.stderr]) expect(output).not.toContain(password)
      // A wrong password: exit 1, one line naming the user, still no password.
      writeFileSync(path.join(cwd, 'taskd.config.mjs'), `export default {database: ${JSON.stringify(url.replace(password, 'wrong-' + password))}}\n`)
      const denied = await runCli(['db', 'status'], {cwd})
      expect(denied.code).toBe(1)
      expect(lines(denied.stderr)).toHaveLength(1)
      expect(denied.stderr).toContain(`refused user '${user}'`)
      expect(denied.stderr + denied.stdout).not.toContain(password)
      // TASKD_DATABASE_URL beats the module.
      const sqliteUrl = `sqlite:${path.join(cwd, 'env.sqlite')}`
      expect((await runCliOk<DbStatus>(['db', 'status', '--json'], {cwd, env: {TASKD_DATABASE_URL: sqliteUrl}})).database).toBe(sqliteUrl)
    } finally {
      await admin.query(`DROP USER IF EXISTS ?@'%'`, [user])
      await admin.end()
    }
  })

  it.each([
    ['--config', (p: string) => ({args: ['--config', p], env: {}})],
    ['TASKD_CONFIG', (p: string) => ({args: [], env: {TASKD_CONFIG: p}})],
  ])('a missing module named by %s exits 2 naming the path', async (_, how) => {
    const cwd = tempDir()
    const missing = path.join(cwd, 'no-such-config.mjs')
    const {args, env} = how(missing)
    const text = await runCli(['db', 'status', ...args], {cwd, env})
    expect(text.code).toBe(2)
    expect(lines(text.stderr)).toHaveLength(1)
    expect(text.stderr).toContain(missing)
    const json = await runCli(['db', 'status', '--json', ...args], {cwd, env})
    expect(json.code).toBe(2)
    expect(json.json).toMatchObject({error: {code: 'E_CONFIG'}})
    expect(existsSync(path.join(cwd, '.taskd'))).toBe(false)
  })

  it('a config module that fails to load exits 1 with one line naming it', async () => {
    const cwd = tempDir()
    writeFileSync(path.join(cwd, 'taskd.config.mjs'), `throw new Error('config exploded')\n`)
    const result = await runCli(['db', 'status'], {cwd})
    expect(result.code).toBe(1)
    expect(lines(result.stderr)).toHaveLength(1)
    expect(result.stderr).toContain('taskd.config.mjs')
    expect(result.stderr).toContain('config exploded')
    expect(result.stderr).not.toMatch(STACK_FRAME)
  })
})

describe.concurrent.each(DIALECTS)('tasks flood + run --until-idle on $name', ({name, skip}) => {
  it.skipIf(skip)('archives all 2000 tasks as successes', async () => {
    const cwd = tempDir()
    const database = await freshDatabase(name)
    const d = ['--database', database.url]
    await runCliOk(['db', 'migrate', '--json', ...d], {cwd})
    const flood = await runCliOk<{count: number; taskClass: string}>(['tasks', 'flood', '--count', '2000', '--json', ...d], {cwd})
    expect(flood).toMatchObject({count: 2000, taskClass: 'taskd.noop'})
    const run = await runCli(['run', '--until-idle', '--generators', 'queue', ...d], {cwd})
    expect(run.stderr).toBe('')
    expect(run.code).toBe(0)
    expect(run.stdout).toMatch(/daemon stopped .*succeeded=2000 failed=0/)

    await withStorage(database.url, async ({db}) => {
      expect(Number((await db.selectFrom('taskd_tasks').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n)).toBe(0)
      const byResult = await db.selectFrom('taskd_task_archive').select(['result', (eb) => eb.fn.countAll().as('n'), (eb) => eb.fn.count('id').distinct().as('ids')]).groupBy('result').execute()
      expect(byResult.map((r) => ({result: Number(r.result), n: Number(r.n), ids: Number(r.ids)}))).toEqual([{result: ARCHIVE_RESULT.success, n: 2000, ids: 2000}])
      const attempts = await db.selectFrom('taskd_task_archive').select('attempts').distinct().execute()
      expect(attempts.map((a) => Number(a.attempts))).toEqual([1])
    })
  })
})

describe.concurrent('bad input', () => {
  const cwd = tempDir()
  const defaultUrl = `sqlite:${path.join(cwd, '.taskd', 'taskd.sqlite')}`
  // Migrated up front: concurrent first commands on a fresh SQLite file race (see processes.test.ts).
  beforeAll(async () => {
    await runCliOk(['db', 'migrate'], {cwd})
  })
  /** No bad input may leave anything behind (in-process: this costs no spawn). */
  const expectNothingEnqueued = () =>
    withStorage(defaultUrl, async ({db}) => {
      expect(await db.selectFrom('taskd_tasks').select('id').execute()).toEqual([])
      expect(await db.selectFrom('taskd_daemons').select('id').execute()).toEqual([])
    })
  const big = path.join(cwd, 'big.json')
  writeFileSync(big, JSON.stringify({blob: 'x'.repeat(MAX_DATA_BYTES)}))

  interface Case {
    name: string
    args: string[]
    exit: 1 | 2
    code: string
    stderr: RegExp
    /** The command has no --json flag. */
    noJson?: boolean
  }
  const unreachable = 'mysql://root:hunter2@127.0.0.1:1/x'
  const cases: Case[] = [
    {name: 'an unknown flag', args: ['db', 'status', '--bogus'], exit: 2, code: 'E_USAGE', stderr: /Nonexistent flag: --bogus/},
    {name: 'an unknown flag on run', args: ['run', '--bogus'], exit: 2, code: 'E_USAGE', stderr: /Nonexistent flag: --bogus/, noJson: true},
    {name: 'a missing argument', args: ['tasks', 'enqueue'], exit: 2, code: 'E_USAGE', stderr: /Missing 1 required arg:.*taskClass/},
    {name: 'a missing required flag', args: ['tasks', 'flood'], exit: 2, code: 'E_USAGE', stderr: /Missing required flag count/},
    {name: '--count 0', args: ['tasks', 'flood', '--count', '0'], exit: 2, code: 'E_USAGE', stderr: /--count.*greater than or equal to 1/},
    {name: 'a bad --priority', args: ['tasks', 'enqueue', 'x', '--priority', 'soonish'], exit: 2, code: 'E_USAGE', stderr: /invalid priority 'soonish'/},
    {name: 'a priority of 0', args: ['tasks', 'enqueue', 'x', '--priority', '0'], exit: 2, code: 'E_USAGE', stderr: /invalid priority '0'/},
    {name: 'a malformed --delay', args: ['tasks', 'enqueue', 'x', '--delay', '5 minutes'], exit: 2, code: 'E_USAGE', stderr: /invalid duration '5 minutes'/},
    {name: 'a malformed --grace', args: ['run', '--grace', 'soon'], exit: 2, code: 'E_USAGE', stderr: /invalid --grace 'soon'/, noJson: true},
    {name: 'malformed --data JSON', args: ['tasks', 'enqueue', 'x', '--data', '{id: 1}'], exit: 2, code: 'E_BAD_DATA', stderr: /--data.*not valid JSON/},
    {name: 'a --data file that does not exist', args: ['tasks', 'enqueue', 'x', '--data', '@missing.json'], exit: 2, code: 'E_BAD_DATA', stderr: /missing\.json/},
    {name: 'oversized --data', args: ['tasks', 'enqueue', 'x', '--data', `@${big}`], exit: 2, code: 'E_PAYLOAD_TOO_LARGE', stderr: new RegExp(`limit of ${MAX_DATA_BYTES} bytes`)},
    {name: 'oversized --data on flood', args: ['tasks', 'flood', '--count', '2', '--data', `@${big}`], exit: 2, code: 'E_PAYLOAD_TOO_LARGE', stderr: new RegExp(`limit of ${MAX_DATA_BYTES} bytes`)},
    {name: 'an unknown database URL scheme', args: ['db', 'status', '--database', 'postgres://u:hunter2@db/x'], exit: 2, code: 'E_BAD_URL', stderr: /unknown database URL 'postgres:\/\/u:\*\*\*@db\/x'/},
    {name: 'a MySQL URL without a database', args: ['db', 'status', '--database', 'mysql://root:hunter2@127.0.0.1:3306'], exit: 2, code: 'E_BAD_URL', stderr: /invalid database URL/},
    {name: 'an unreachable database', args: ['db', 'status', '--database', unreachable], exit: 1, code: 'E_DB_UNREACHABLE', stderr: /127\.0\.0\.1:1\b/},
    {name: 'an unreachable database (enqueue)', args: ['tasks', 'enqueue', 'x', '--database', unreachable], exit: 1, code: 'E_DB_UNREACHABLE', stderr: /127\.0\.0\.1:1\b/},
    {name: 'an unreachable database (run)', args: ['run', '--until-idle', '--database', unreachable], exit: 1, code: 'E_DB_UNREACHABLE', stderr: /127\.0\.0\.1:1\b/, noJson: true},
    {name: 'an unreachable database via the env', args: ['status'], exit: 1, code: 'E_DB_UNREACHABLE', stderr: /127\.0\.0\.1:1\b/},
    {name: 'a parse error with a password in --database', args: ['tasks', 'enqueue', '--database', unreachable], exit: 2, code: 'E_USAGE', stderr: /Missing 1 required arg/},
  ]
  const envFor = (c: Case) => (c.name.includes('via the env') ? {TASKD_DATABASE_URL: unreachable} : {})

  const expectClean = (result: CliResult) => {
    for (const stream of [result.stdout, result.stderr]) {
      expect(stream).not.toContain('hunter2')
      expect(stream).not.toMatch(STACK_FRAME)
    }
  }

  it.each(cases)('$name: exit $exit, one line on stderr', async (c) => {
    const result = await runCli(c.args, {cwd, env: envFor(c)})
    expect(result.code, result.stderr).toBe(c.exit)
    expect(result.stdout).toBe('')
    expect(lines(result.stderr), result.stderr).toHaveLength(1)
    expect(result.stderr).toMatch(/^Error: /)
    expect(result.stderr).toMatch(c.stderr)
    expectClean(result)
    await expectNothingEnqueued()
  })

  it.each(cases.filter((c) => !c.noJson))('$name --json: a JSON error with code $code on stdout, exit $exit', async (c) => {
    const result = await runCli([...c.args, '--json'], {cwd, env: envFor(c)})
    expect(result.code, result.stdout).toBe(c.exit)
    expect(result.stderr).toBe('')
    expect(result.json, result.stdout).toEqual({error: {code: c.code, message: expect.stringMatching(c.stderr), oclif: {exit: c.exit}}})
    expect((result.json as {error: {message: string}}).error.message).not.toContain('\n')
    expectClean(result)
    await expectNothingEnqueued()
  })

  it('prints a stack trace only with --verbose (runtime and parse errors), still without the password', async () => {
    const runtime = await runCli(['db', 'status', '--verbose', '--database', unreachable], {cwd})
    expect(runtime.code).toBe(1)
    expect(runtime.stderr).toMatch(STACK_FRAME)
    expect(lines(runtime.stderr).at(-1)).toMatch(/^Error: cannot reach MySQL at 127\.0\.0\.1:1 /)
    expect(runtime.stderr + runtime.stdout).not.toContain('hunter2')
    const parse = await runCli(['tasks', 'enqueue', 'x', '--priority', 'soonish', '--verbose'], {cwd})
    expect(parse.code).toBe(2)
    expect(parse.stderr).toMatch(STACK_FRAME)
    expect(lines(parse.stderr).at(-1)).toMatch(/^Error: --priority: invalid priority 'soonish'/)
  })

  it('an unknown command exits 2 with one line', async () => {
    const result = await runCli(['frobnicate'], {cwd})
    expect(result.code).toBe(2)
    expect(result.stdout).toBe('')
    expect(lines(result.stderr)).toHaveLength(1)
    expect(result.stderr).toContain('frobnicate')
  })

  it('accepts --data @FILE and @- (stdin) up to the limit', async () => {
    const cwd = tempDir()
    const file = path.join(cwd, 'ok.json')
    writeFileSync(file, JSON.stringify({blob: 'y'.repeat(MAX_DATA_BYTES - 100)}))
    const fromFile = await runCliOk<{ref: string; id: number}>(['tasks', 'enqueue', 'app.big', '--data', `@${file}`, '--json', '--delay', '1h'], {cwd})
    const fromStdin = await runCli(['tasks', 'enqueue', 'app.small', '--data', '@-', '--json', '--delay', '1h'], {cwd, input: '{"n": 7}'})
    expect(fromStdin.code, fromStdin.stderr).toBe(0)
    await withStorage(`sqlite:${path.join(cwd, '.taskd', 'taskd.sqlite')}`, async ({db}) => {
      const rows = await db.selectFrom('taskd_tasks').select(['id', 'task_class', sql<number>`length(data)`.as('bytes'), 'data']).orderBy('id').execute()
      expect(rows.map((r) => r.task_class)).toEqual(['app.big', 'app.small'])
      expect(rows[0].id).toBe(fromFile.id)
      expect(Number(rows[0].bytes)).toBe(MAX_DATA_BYTES - 100 + '{"blob":""}'.length)
      expect(JSON.parse(rows[1].data)).toEqual({n: 7})
    })
  })
})

describe.concurrent.each(DIALECTS)('handlers from a config module on $name', ({name, skip}) => {
  it.skipIf(skip)('runs user handlers; an unregistered class and non-Error throws are recorded and the daemon carries on', async () => {
    const cwd = tempDir()
    const database = await freshDatabase(name)
    const echoLog = path.join(cwd, 'echo.log')
    writeFileSync(
      path.join(cwd, 'taskd.config.mjs'),
      `import {appendFileSync} from 'node:fs'
export default {
  database: ${JSON.stringify(database.url)},
  handlers: {
    'app.echo': async (data, ctx) => {
      appendFileSync(${JSON.stringify(echoLog)}, JSON.stringify({ref: ctx.task.ref, attempt: ctx.task.attempt, data}) + '\\n')
      return data
    },
    // A string, not an Error: retried later under the default policy, with the string as the error.
    'app.throwsString': () => {
      throw 'plain string, not an Error'
    },
    // An object, not an Error, with no retries left: archived as failed.
    'app.throwsObject': {
      run: async () => {
        throw {code: 42, why: 'not an Error'}
      },
      maxRetries: 0,
    },
  },
}
`,
    )
    await runCliOk(['db', 'migrate'], {cwd})
    // Enqueued in-process (the CLI's enqueue has tests of its own): this test is about running handlers.
    const [stringId, objectId, unknownId, ...echoIds] = await withStorage(database.url, async (storage) => {
      const ids: number[] = []
      // The failing ones first: with one worker the echo tasks run after them, so they show the daemon carried on.
      for (const [taskClass, data] of [
        ['app.throwsString'],
        ['app.throwsObject'],
        ['app.unregistered', {x: 1}],
        ['app.echo', {greeting: 'hello', n: 1}],
        ['app.echo', [1, 'two', null]],
        ['app.echo'],
      ] as [string, unknown?][]) {
        ids.push((await enqueueTask(storage, {taskClass, data})).id)
      }
      return ids
    })

    const run = await runCli(['run', '--until-idle', '--generators', 'queue', '--concurrency', '1', '--log-format', 'json'], {cwd})
    expect(run.code, run.stderr + run.stdout).toBe(0)
    expect(run.stderr).toBe('')
    const events = lines(run.stdout).map((line) => JSON.parse(line) as {event: string; [k: string]: unknown})
    expect(events.at(-1)).toMatchObject({event: 'daemon stopped', leased: 6, succeeded: 3, failed: 2, retried: 1})

    const echoed = lines(readFileSync(echoLog, 'utf8')).map((line) => JSON.parse(line) as unknown)
    expect(echoed).toEqual([
      {ref: `queue:${echoIds[0]}`, attempt: 1, data: {greeting: 'hello', n: 1}},
      {ref: `queue:${echoIds[1]}`, attempt: 1, data: [1, 'two', null]},
      {ref: `queue:${echoIds[2]}`, attempt: 1, data: null},
    ])

    await withStorage(database.url, async ({db}) => {
      const archived = await db.selectFrom('taskd_task_archive').select(['id', 'task_class', 'result', 'reason', 'failure_count']).orderBy('id').execute()
      const byId = new Map(archived.map((row) => [Number(row.id), row]))
      for (const id of echoIds) expect(byId.get(id)).toMatchObject({result: ARCHIVE_RESULT.success, reason: null})
      expect(byId.get(unknownId)).toMatchObject({task_class: 'app.unregistered', result: ARCHIVE_RESULT.failure})
      expect(byId.get(unknownId)?.reason).toContain("'app.unregistered'")
      expect(byId.get(objectId)).toMatchObject({result: ARCHIVE_RESULT.failure})
      expect(byId.get(objectId)?.reason).toContain('non-Error thrown: {"code":42,"why":"not an Error"}')
      expect(byId.has(stringId)).toBe(false)

      const waiting = await db.selectFrom('taskd_tasks').selectAll().execute()
      expect(waiting).toHaveLength(1)
      expect(waiting[0]).toMatchObject({id: stringId, lease_owner: null, lease_expires: null, last_error: 'plain string, not an Error'})
      expect(Number(waiting[0].failure_count)).toBe(1)
    })
  })
})

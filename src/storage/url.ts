import path from 'node:path'

import {usageError} from '../core/errors.js'

export type DatabaseTarget =
  | {kind: 'sqlite'; path: string; url: string}
  | {kind: 'mysql'; host: string; port: number; user: string; password: string; database: string; url: string}

const EXPECTED = 'expected sqlite:PATH, sqlite::memory: or mysql://user[:password]@host[:port]/database'

/** Parses a database URL. `url` in the result is safe to print: any password is masked. */
export function parseDatabaseUrl(input: string, cwd = process.cwd()): DatabaseTarget {
  const raw = input.trim()
  if (raw.startsWith('sqlite:')) {
    let file = raw.slice('sqlite:'.length)
    if (file.startsWith('//')) file = file.slice(2)
    if (file === '') throw usageError(`invalid database URL '${raw}': ${EXPECTED}`, 'E_BAD_URL')
    if (file === ':memory:') return {kind: 'sqlite', path: ':memory:', url: 'sqlite::memory:'}
    const resolved = path.resolve(cwd, file)
    return {kind: 'sqlite', path: resolved, url: `sqlite:${resolved}`}
  }
  if (/^(mysql|mariadb):\/\//i.test(raw)) {
    let parsed: URL
    try {
      parsed = new URL(raw)
    } catch {
      throw usageError(`invalid database URL '${redactUrl(raw)}': ${EXPECTED}`, 'E_BAD_URL')
    }
    const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''))
    if (!parsed.hostname || !database || database.includes('/')) {
      throw usageError(`invalid database URL '${redactUrl(raw)}': ${EXPECTED} (host and database are required)`, 'E_BAD_URL')
    }
    const port = parsed.port ? Number(parsed.port) : 3306
    const user = decodeURIComponent(parsed.username || 'root')
    const password = decodeURIComponent(parsed.password)
    const shown = `mysql://${encodeURIComponent(user)}${password ? ':***' : ''}@${parsed.hostname}:${port}/${database}`
    return {kind: 'mysql', host: parsed.hostname, port, user, password, database, url: shown}
  }
  throw usageError(`unknown database URL '${redactUrl(raw)}': ${EXPECTED}`, 'E_BAD_URL')
}

/** Masks the password of anything that looks like a URL with credentials. */
export function redactUrl(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/@\s[]*:)[^@\s]*@/gi, '$1***@')
}

/** The embedded default: an SQLite file under .taskd/ in the working directory. */
export function defaultDatabaseUrl(cwd = process.cwd()): string {
  return `sqlite:${path.join(cwd, '.taskd', 'taskd.sqlite')}`
}

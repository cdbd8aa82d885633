import {sql} from 'kysely'

import {priorityBand} from '../core/priority.js'
import {queueGenerator} from '../generators/queue/generator.js'
import type {Storage} from '../storage/storage.js'

/** A heartbeat younger than this is alive; older than DEAD_AFTER is dead; in between, stale. */
export const ALIVE_WITHIN_SECONDS = 60
export const DEAD_AFTER_SECONDS = 300

export interface DaemonStatus {
  id: string
  host: string
  pid: number
  state: 'alive' | 'stale' | 'dead' | 'stopped'
  startedAt: number
  heartbeatAt: number
  heartbeatAgeSeconds: number
  concurrency: number
  generators: string[]
  running: {ref: string; taskClass: string; startedAt: number}[]
}

export interface QueueStatus {
  ready: number
  leased: number
  delayed: number
  expired: number
  failing: number
  byBand: Record<string, number>
}

export function daemonState(status: string, ageSeconds: number): DaemonStatus['state'] {
  if (status === 'stopped') return 'stopped'
  if (ageSeconds <= ALIVE_WITHIN_SECONDS) return 'alive'
  return ageSeconds <= DEAD_AFTER_SECONDS ? 'stale' : 'dead'
}

export async function listDaemons(storage: Storage, options: {includeStopped?: boolean} = {}): Promise<DaemonStatus[]> {
  const now = storage.now()
  const rows = await storage.db.selectFrom('taskd_daemons').selectAll().orderBy('started_at', 'desc').limit(200).execute()
  return rows
    .map((row) => {
      const age = now - Number(row.heartbeat_at)
      return {
        id: row.id,
        host: row.host,
        pid: Number(row.pid),
        state: daemonState(row.status, age),
        startedAt: Number(row.started_at),
        heartbeatAt: Number(row.heartbeat_at),
        heartbeatAgeSeconds: age,
        concurrency: Number(row.concurrency),
        generators: JSON.parse(row.generators) as string[],
        running: JSON.parse(row.running) as DaemonStatus['running'],
      }
    })
    .filter((d) => options.includeStopped || (d.state !== 'stopped' && d.state !== 'dead'))
}

export async function queueStatus(storage: Storage): Promise<QueueStatus> {
  const summary = await queueGenerator.summarize!({store: storage, owner: 'status'})
  const bands = await storage.db
    .selectFrom('taskd_tasks')
    .select(['priority', sql<number>`count(*)`.as('n')])
    .groupBy('priority')
    .execute()
  const byBand: Record<string, number> = {}
  for (const {priority, n} of bands) byBand[priorityBand(priority)] = (byBand[priorityBand(priority)] ?? 0) + Number(n)
  const b = summary.backlog ?? {}
  return {ready: b.ready ?? 0, leased: b.leased ?? 0, delayed: b.delayed ?? 0, expired: b.expired ?? 0, failing: b.failing ?? 0, byBand}
}

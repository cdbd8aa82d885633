/**
 * A separate process that leases from the queue on its own Storage handle, for the concurrent
 * leasing test: `node --import tsx lease-worker.ts <database-url> <owner> <loops> <limit>`.
 * It opens its handle, says `ready`, waits for `go` (so every worker starts together), then runs
 * `loops` concurrent lease loops until the queue is empty and sends back the ids it got.
 */
import {queueGenerator} from '../../src/generators/queue/generator.js'
import {Storage} from '../../src/storage/storage.js'

export interface LeaseWorkerReport {
  owner: string
  ids: number[]
  error?: string
}

const [url, owner, loops, limit] = process.argv.slice(2)
const send = (message: unknown) => new Promise<void>((resolve) => process.send?.(message, () => resolve()))

const storage = await Storage.open(url)
const go = new Promise<void>((resolve) => process.once('message', () => resolve()))
await send('ready')
await go
let report: LeaseWorkerReport
try {
  const lists = await Promise.all(
    Array.from({length: Number(loops)}, async () => {
      const mine: number[] = []
      for (;;) {
        const tasks = await queueGenerator.lease({store: storage, owner}, {limit: Number(limit), leaseSeconds: 600})
        if (tasks.length === 0) return mine
        mine.push(...tasks.map((t) => Number(t.identifier)))
      }
    }),
  )
  report = {owner, ids: lists.flat()}
} catch (error) {
  report = {owner, ids: [], error: String((error as Error)?.stack ?? error)}
}
await storage.close()
await send(report)
process.disconnect?.()

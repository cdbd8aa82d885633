/**
 * A separate process that leases from the queue on its own Storage handle, for the concurrent
 * leasing test. Run with `node --import tsx lease-worker.ts`; it answers requests over IPC, one at
 * a time, so one process serves every dialect:
 * - `{type: 'open', url}`: open a Storage handle (reply `{type: 'opened'}`), so the parent can start
 *   every worker's leasing together once all handles are open;
 * - `{type: 'lease', owner, loops, limit}`: run `loops` concurrent lease loops until the queue is
 *   empty and reply with the ids leased (`LeaseWorkerReport`);
 * - `{type: 'close'}`: close the handle (reply `{type: 'closed'}`).
 */
import {queueGenerator} from '../../src/generators/queue/generator.js'
import {Storage} from '../../src/storage/storage.js'

export type LeaseWorkerRequest =
  | {type: 'open'; url: string}
  | {type: 'lease'; owner: string; loops: number; limit: number}
  | {type: 'close'}

export type LeaseWorkerReply =
  | {type: 'opened'}
  | {type: 'closed'}
  | {type: 'report'; report: LeaseWorkerReport}
  | {type: 'error'; error: string}

export interface LeaseWorkerReport {
  owner: string
  ids: number[]
}

let storage: Storage | null = null

async function leaseAll(store: Storage, owner: string, loops: number, limit: number): Promise<number[]> {
  const lists = await Promise.all(
    Array.from({length: loops}, async () => {
      const mine: number[] = []
      for (;;) {
        const tasks = await queueGenerator.lease({store, owner}, {limit, leaseSeconds: 600})
        if (tasks.length === 0) return mine
        mine.push(...tasks.map((t) => Number(t.identifier)))
      }
    }),
  )
  return lists.flat()
}

async function handle(request: LeaseWorkerRequest): Promise<LeaseWorkerReply> {
  switch (request.type) {
    case 'open':
      storage = await Storage.open(request.url)
      return {type: 'opened'}
    case 'lease':
      if (!storage) throw new Error('lease before open')
      return {type: 'report', report: {owner: request.owner, ids: await leaseAll(storage, request.owner, request.loops, request.limit)}}
    case 'close':
      await storage?.close()
      storage = null
      return {type: 'closed'}
  }
}

process.on('message', (request: LeaseWorkerRequest) => {
  void handle(request)
    .catch((error: unknown): LeaseWorkerReply => ({type: 'error', error: String((error as Error)?.stack ?? error)}))
    .then((reply) => process.send?.(reply))
})
process.on('disconnect', () => {
  const closing = storage ? storage.close() : Promise.resolve()
  void closing.finally(() => process.exit(0))
})

/**
 * A bench worker: one daemon in its own process (what `taskd run` is, minus the CLI), driven over
 * IPC so the parent times only the work and not process start-up. Run by the bench with
 * `node --import tsx bench/worker.ts '<json config>'`.
 */
import {Daemon} from '../src/daemon/daemon.js'
import {queueGenerator} from '../src/generators/queue/generator.js'
import {Storage} from '../src/storage/storage.js'
import {countingNoop} from './drain.js'
import {PING_CLASS, type FromWorker, type MemorySample, type ToWorker, type WorkerConfig} from './protocol.js'
import {nowMs} from './stats.js'

const send = (message: FromWorker): Promise<void> =>
  new Promise((resolve, reject) => {
    if (!process.send) return reject(new Error('bench worker needs an IPC channel'))
    process.send(message, (error: Error | null) => (error ? reject(error) : resolve()))
  })

const nextMessage = (): Promise<ToWorker> => new Promise((resolve) => process.once('message', (m: ToWorker) => resolve(m)))

const mb = (bytes: number) => bytes / 1_048_576
/** Only present when the worker runs with --expose-gc. */
const collect = (): void => (globalThis as {gc?: () => void}).gc?.()

async function main(config: WorkerConfig): Promise<void> {
  const storage = await Storage.open(config.url)
  try {
    if (config.mode === 'idle') {
      const daemon = new Daemon({
        storage,
        generators: [queueGenerator],
        concurrency: 4,
        pollMaxSeconds: config.pollMaxSeconds,
        handlers: {[PING_CLASS]: (data) => void send({type: 'started', seq: Number((data as {seq: number}).seq)})},
      })
      await daemon.start()
      const stop = nextMessage()
      await send({type: 'ready'})
      await stop
      await daemon.stop({graceSeconds: 1})
      await send({type: 'done', ms: 0, stats: daemon.stats})
      return
    }
    const noop = countingNoop(config.total)
    const daemon = new Daemon({storage, generators: [queueGenerator], concurrency: config.concurrency, handlers: noop.handlers})
    const go = nextMessage()
    await send({type: 'ready'})
    await go
    const start = nowMs()
    const samples: MemorySample[] = []
    let baselineHeap: number | null = null
    let sampler: NodeJS.Timeout | undefined
    if (config.mode === 'rss') {
      sampler = setInterval(() => {
        const succeeded = daemon.stats.succeeded
        if (baselineHeap === null && succeeded >= config.total / 10) {
          collect()
          baselineHeap = mb(process.memoryUsage().heapUsed)
        }
        const m = process.memoryUsage()
        samples.push({t: nowMs() - start, succeeded, rssMb: mb(m.rss), heapMb: mb(m.heapUsed)})
      }, config.sampleMs)
    }
    await daemon.start()
    // Either every task ran (self-stopping) or the parent saw the queue empty and says stop.
    await Promise.race([noop.allRan, nextMessage()])
    await daemon.stop({graceSeconds: 5})
    const ms = nowMs() - start
    if (sampler) clearInterval(sampler)
    if (config.mode === 'rss') {
      const m = process.memoryUsage()
      samples.push({t: ms, succeeded: daemon.stats.succeeded, rssMb: mb(m.rss), heapMb: mb(m.heapUsed)})
      collect()
      const end = mb(process.memoryUsage().heapUsed)
      await send({type: 'done', ms, stats: daemon.stats, samples, heapAfterGcMb: {baseline: baselineHeap ?? end, end}})
    } else {
      await send({type: 'done', ms, stats: daemon.stats})
    }
  } finally {
    await storage.close()
  }
}

main(JSON.parse(process.argv[2] ?? '{}') as WorkerConfig)
  .then(() => process.disconnect?.())
  .catch(async (error: unknown) => {
    await send({type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error)}).catch(() => undefined)
    process.exitCode = 1
    process.disconnect?.()
  })

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
    collect()
    const heapStart = mb(process.memoryUsage().heapUsed)
    const go = nextMessage()
    await send({type: 'ready'})
    await go
    const start = nowMs()
    const samples: MemorySample[] = []
    // The longest gap between turns of a 10 ms timer, counting a gap still open at the end (a loop
    // that never turns never fires the timer at all, which perf_hooks' histogram would not see).
    let lastTick = start
    let longestGap = 0
    const ticker = setInterval(() => {
      const t = nowMs()
      longestGap = Math.max(longestGap, t - lastTick)
      lastTick = t
    }, 10)
    let sampler: NodeJS.Timeout | undefined
    if (config.mode === 'rss') {
      sampler = setInterval(() => samples.push({t: nowMs() - start, rssMb: mb(process.memoryUsage().rss)}), config.sampleMs)
    }
    await daemon.start()
    // Either every task ran (self-stopping) or the parent saw the queue empty and says stop.
    await Promise.race([noop.allRan, nextMessage()])
    await daemon.stop({graceSeconds: 5})
    const ms = nowMs() - start
    if (sampler) clearInterval(sampler)
    clearInterval(ticker)
    longestGap = Math.max(longestGap, nowMs() - lastTick)
    if (config.mode === 'rss') {
      samples.push({t: ms, rssMb: mb(process.memoryUsage().rss)})
      collect()
      const heapEnd = mb(process.memoryUsage().heapUsed)
      await send({type: 'done', ms, stats: daemon.stats, samples, heapAfterGcMb: {start: heapStart, end: heapEnd}, loopStallMaxMs: Math.max(0, longestGap - 10)})
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

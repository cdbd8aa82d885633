/** Messages between the bench (parent) and a bench worker process, over Node's IPC channel. */
export type WorkerConfig =
  /** Drains until told to stop (total: null), or stops itself after `total` tasks. */
  | {mode: 'drain'; url: string; concurrency: number; total: number | null}
  | {mode: 'idle'; url: string; pollMaxSeconds: number}
  /** Drains `total` tasks; samples its own memory (when its event loop lets it) and event-loop stalls. */
  | {mode: 'rss'; url: string; concurrency: number; total: number; sampleMs: number}

export interface DaemonStats {
  leased: number
  succeeded: number
  failed: number
}

export interface MemorySample {
  /** Milliseconds since the worker was told to go. */
  t: number
  rssMb: number
}

export type ToWorker = {type: 'go'} | {type: 'stop'}

export type FromWorker =
  | {type: 'ready'}
  | {type: 'started'; seq: number}
  | {type: 'done'; ms: number; stats: DaemonStats; samples?: MemorySample[]; heapAfterGcMb?: {start: number; end: number}; loopStallMaxMs?: number}
  | {type: 'error'; message: string}

export const PING_CLASS = 'bench.ping'
/** The class the bench fills the queue with: taskd's built-in no-op handler. */
export const NOOP_CLASS = 'taskd.noop'

import {spawn, type ChildProcess} from 'node:child_process'
import {fileURLToPath} from 'node:url'

import type {FromWorker, ToWorker, WorkerConfig} from './protocol.js'

const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url))

/** A bench worker process and a way to await its messages in order. */
export interface WorkerHandle {
  child: ChildProcess
  send(message: ToWorker): void
  /** Resolves with the next message of the given type (earlier messages of other types are skipped). */
  next<K extends FromWorker['type']>(type: K, timeoutMs?: number): Promise<Extract<FromWorker, {type: K}>>
  /** Calls fn for every message of this type, as it arrives. */
  on<K extends FromWorker['type']>(type: K, fn: (message: Extract<FromWorker, {type: K}>) => void): void
  exited: Promise<number | null>
}

export function spawnWorker(config: WorkerConfig, nodeArgs: readonly string[] = []): WorkerHandle {
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', WORKER, JSON.stringify(config)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: {...process.env, NODE_OPTIONS: ''},
  })
  const queue: FromWorker[] = []
  const waiters: {type: string; resolve: (m: FromWorker) => void; reject: (e: Error) => void}[] = []
  const listeners = new Map<string, (m: FromWorker) => void>()
  let failure: Error | null = null
  const fail = (error: Error) => {
    failure = error
    for (const w of waiters.splice(0)) w.reject(error)
  }
  child.on('message', (message: FromWorker) => {
    if (message.type === 'error') return fail(new Error(`bench worker failed: ${message.message}`))
    const listener = listeners.get(message.type)
    if (listener) return listener(message)
    const i = waiters.findIndex((w) => w.type === message.type)
    if (i >= 0) waiters.splice(i, 1)[0].resolve(message)
    else queue.push(message)
  })
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      if (code !== 0 && !failure) fail(new Error(`bench worker exited with code ${code}`))
      resolve(code)
    }),
  )
  return {
    child,
    exited,
    send: (message) => void child.send(message),
    on: (type, fn) => void listeners.set(type, fn as (m: FromWorker) => void),
    next: (type, timeoutMs = 600_000) =>
      new Promise((resolve, reject) => {
        if (failure) return reject(failure)
        const i = queue.findIndex((m) => m.type === type)
        if (i >= 0) return resolve(queue.splice(i, 1)[0] as Extract<FromWorker, {type: typeof type}>)
        const timer = setTimeout(() => reject(new Error(`bench worker sent no '${type}' within ${timeoutMs} ms`)), timeoutMs)
        waiters.push({
          type,
          resolve: (m) => {
            clearTimeout(timer)
            resolve(m as Extract<FromWorker, {type: typeof type}>)
          },
          reject: (e) => {
            clearTimeout(timer)
            reject(e)
          },
        })
      }),
  }
}

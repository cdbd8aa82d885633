import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {Daemon} from '../src/daemon/daemon.js'
import {enqueueTask, enqueueTasks} from '../src/generators/queue/enqueue.js'
import {queueGenerator} from '../src/generators/queue/generator.js'
import type {Storage} from '../src/storage/storage.js'
import {DIALECTS, openTestStorage, until} from './helpers/databases.js'

describe.each(DIALECTS)('daemon slot refill on $name', ({name, skip}) => {
  let storage: Storage
  let cleanup: () => Promise<void>

  beforeAll(async () => {
    if (!skip) ({storage, cleanup} = await openTestStorage(name))
  })
  afterAll(async () => {
    if (!skip) await cleanup()
  })

  it.skipIf(skip)('fills a single free slot while long tasks occupy the others (grouped refills do not starve it)', async () => {
    let release = () => {}
    const gate = new Promise<void>((resolve) => (release = resolve))
    let longRunning = 0
    const daemon = new Daemon({
      storage,
      generators: [queueGenerator],
      concurrency: 8,
      pollMaxSeconds: 0.05,
      handlers: {
        'app.long': async () => {
          longRunning++
          await gate
        },
      },
    })
    await enqueueTasks(storage, Array.from({length: 7}, () => ({taskClass: 'app.long'})))
    await daemon.start()
    try {
      await until(() => longRunning === 7, {what: 'the 7 long tasks to run'})
      // One slot is free (fewer than a refill group of 2): the quick task still runs while the long ones hold theirs.
      const {id} = await enqueueTask(storage, {taskClass: 'taskd.noop'})
      await until(async () => (await storage.db.selectFrom('taskd_task_archive').select('id').where('id', '=', id).executeTakeFirst()) !== undefined, {
        what: 'the quick task to be archived while 7 slots are busy',
      })
      expect(longRunning).toBe(7)
    } finally {
      release()
      await daemon.stop({graceSeconds: 5})
    }
    expect(daemon.stats.succeeded).toBe(8)
  })
})

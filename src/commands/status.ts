import {Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {formatTime, renderTable} from '../cli/render.js'
import {listDaemons, queueStatus, type DaemonStatus, type QueueStatus} from '../daemon/status.js'

export interface StatusResult {
  database: string
  daemons: DaemonStatus[]
  queue: QueueStatus
}

export default class Status extends BaseCommand<typeof Status> {
  static override summary = 'Show daemons (alive, stale or dead by heartbeat), what they run, and queue counts'
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --all --json']
  static override flags = {
    all: Flags.boolean({summary: 'Include stopped and dead daemons'}),
  }

  async run(): Promise<StatusResult> {
    const storage = await this.openStorage()
    const daemons = await listDaemons(storage, {includeStopped: this.flags.all})
    const queue = await queueStatus(storage)
    this.log(`Database: ${storage.target.url}`)
    this.log(
      daemons.length
        ? renderTable(
            ['daemon', 'state', 'heartbeat', 'concurrency', 'running'],
            daemons.map((d) => [d.id, d.state, `${formatTime(d.heartbeatAt)} (${d.heartbeatAgeSeconds}s ago)`, d.concurrency, d.running.map((r) => r.ref).join(' ') || '-']),
          )
        : 'No daemons running.',
    )
    this.log(renderTable(['ready', 'leased', 'delayed', 'expired', 'failing'], [[queue.ready, queue.leased, queue.delayed, queue.expired, queue.failing]]))
    if (Object.keys(queue.byBand).length) this.log(renderTable(['band', 'tasks'], Object.entries(queue.byBand)))
    return {database: storage.target.url, daemons, queue}
  }
}

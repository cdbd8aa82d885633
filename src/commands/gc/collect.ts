import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {renderTable, spinner} from '../../cli/render.js'
import {COLLECTORS, countCollectable, effectiveRetention, findCollector} from '../../generators/gc/collectors.js'
import {GC_KEY, GC_SLEEP_SECONDS, runCollector} from '../../generators/gc/generator.js'
import {daemonOwnerId} from '../../daemon/daemon.js'
import {acquireRun, finishRun} from '../../storage/generator-state.js'

export interface GcCollectRow {
  collector: string
  /** Rows deleted, or that would be with --dry-run. */
  count: number
  /** skipped: a daemon is running this collector right now. */
  status: 'collected' | 'would-collect' | 'skipped-busy' | 'kept-indefinitely'
}

export interface GcCollectResult {
  dryRun: boolean
  collectors: GcCollectRow[]
  total: number
}

export default class GcCollect extends BaseCommand<typeof GcCollect> {
  static override summary = 'Run garbage collection now, in the foreground (safe to rerun; --dry-run counts only)'
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --collector archived-tasks --dry-run']
  static override flags = {
    collector: Flags.string({summary: 'Only this collector'}),
    'dry-run': Flags.boolean({summary: 'Count what would be deleted; delete nothing'}),
  }

  async run(): Promise<GcCollectResult> {
    const collectors = this.flags.collector ? [findCollector(this.flags.collector)] : [...COLLECTORS]
    const storage = await this.openStorage()
    const dryRun = this.flags['dry-run']
    const owner = `gc-collect:${daemonOwnerId()}`
    const rows: GcCollectRow[] = []
    const progress = spinner('Collecting', this.jsonEnabled()).start()
    try {
      for (const collector of collectors) {
        progress.text = `Collecting ${collector.name}`
        const {retentionSeconds} = await effectiveRetention(storage, collector)
        if (retentionSeconds === null) {
          rows.push({collector: collector.name, count: 0, status: 'kept-indefinitely'})
          continue
        }
        if (dryRun) {
          rows.push({collector: collector.name, count: await countCollectable(storage, collector, retentionSeconds), status: 'would-collect'})
          continue
        }
        // Take the collector's run lease like a daemon would, so a foreground run never overlaps one.
        if (!(await acquireRun(storage, GC_KEY, collector.name, owner, 3600, {ignoreSchedule: true}))) {
          rows.push({collector: collector.name, count: 0, status: 'skipped-busy'})
          continue
        }
        const {count} = await runCollector(storage, collector)
        await finishRun(storage, GC_KEY, collector.name, owner, {count, more: false, sleep: {baseSeconds: GC_SLEEP_SECONDS, maxSeconds: GC_SLEEP_SECONDS}})
        rows.push({collector: collector.name, count, status: 'collected'})
      }
    } finally {
      progress.stop()
    }
    const total = rows.reduce((sum, r) => sum + r.count, 0)
    this.log(renderTable(['collector', dryRun ? 'would delete' : 'deleted', 'status'], rows.map((r) => [r.collector, r.count, r.status])))
    this.log(dryRun ? `Would delete ${total} rows.` : `Deleted ${total} rows.`)
    return {dryRun, collectors: rows, total}
  }
}

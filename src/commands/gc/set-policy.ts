import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {usageError} from '../../core/errors.js'
import {effectiveRetention, findCollector, setRetention} from '../../generators/gc/collectors.js'
import {GC_KEY} from '../../generators/gc/generator.js'
import {wakeState} from '../../storage/generator-state.js'

export interface GcSetPolicyResult {
  collector: string
  retentionSeconds: number | null
  source: 'policy' | 'default'
  previousRetentionSeconds: number | null
}

export default class GcSetPolicy extends BaseCommand<typeof GcSetPolicy> {
  static override summary = 'Set how long a collector keeps rows; takes effect at once, without a restart'
  static override examples = [
    '<%= config.bin %> <%= command.id %> archived-tasks --days 30',
    '<%= config.bin %> <%= command.id %> daemons --indefinite',
    '<%= config.bin %> <%= command.id %> archived-tasks --default',
  ]
  static override args = {collector: Args.string({description: 'Collector name (see `taskd gc policies`)', required: true})}
  static override flags = {
    days: Flags.integer({summary: 'Keep rows this many days', min: 0, max: 36_500, exclusive: ['indefinite', 'default']}),
    indefinite: Flags.boolean({summary: 'Keep rows forever', exclusive: ['days', 'default']}),
    default: Flags.boolean({summary: 'Go back to the collector\'s default retention', exclusive: ['days', 'indefinite']}),
  }

  async run(): Promise<GcSetPolicyResult> {
    const collector = findCollector(this.args.collector)
    const {days, indefinite} = this.flags
    if (days === undefined && !indefinite && !this.flags.default) throw usageError('say how long to keep rows: --days N, --indefinite or --default')
    const storage = await this.openStorage()
    const previous = await effectiveRetention(storage, collector)
    await setRetention(storage, collector, this.flags.default ? 'default' : indefinite ? null : days! * 86_400)
    // Make the collector due now so the new policy applies without waiting out its sleep.
    await wakeState(storage, GC_KEY, collector.name)
    const now = await effectiveRetention(storage, collector)
    this.log(`Collector ${collector.name}: ${now.retentionSeconds === null ? 'keeps rows indefinitely' : `keeps rows ${now.retentionSeconds / 86_400} days`} (${now.source}).`)
    return {collector: collector.name, retentionSeconds: now.retentionSeconds, source: now.source, previousRetentionSeconds: previous.retentionSeconds}
  }
}

import {BaseCommand} from '../../cli/base-command.js'
import {formatTime, renderTable} from '../../cli/render.js'
import {formatDuration} from '../../core/duration.js'
import {COLLECTORS, countCollectable, effectiveRetention} from '../../generators/gc/collectors.js'
import {GC_KEY} from '../../generators/gc/generator.js'
import {getState} from '../../storage/generator-state.js'

export interface GcPolicy {
  collector: string
  description: string
  /** null = kept indefinitely */
  retentionSeconds: number | null
  source: 'policy' | 'default'
  defaultRetentionSeconds: number | null
  /** Rows old enough to be collected now. */
  collectable: number
  nextRunAt: number
  lastRunAt: number | null
  lastCount: number | null
}

export interface GcPoliciesResult {
  policies: GcPolicy[]
}

const retentionText = (seconds: number | null) => (seconds === null ? 'indefinite' : formatDuration(seconds))

export default class GcPolicies extends BaseCommand<typeof GcPolicies> {
  static override summary = 'Show each collector\'s retention policy, what it could collect now, and its schedule'
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json']

  async run(): Promise<GcPoliciesResult> {
    const storage = await this.openStorage()
    const policies: GcPolicy[] = []
    for (const collector of COLLECTORS) {
      const {retentionSeconds, source} = await effectiveRetention(storage, collector)
      const state = await getState(storage, GC_KEY, collector.name)
      policies.push({
        collector: collector.name,
        description: collector.description,
        retentionSeconds,
        source,
        defaultRetentionSeconds: collector.defaultRetentionSeconds,
        collectable: await countCollectable(storage, collector, retentionSeconds),
        nextRunAt: state.nextRunAt,
        lastRunAt: state.lastRunAt,
        lastCount: state.lastCount,
      })
    }
    this.log(
      renderTable(
        ['collector', 'retention', 'source', 'collectable now', 'next run', 'last run', 'last count'],
        policies.map((p) => [p.collector, retentionText(p.retentionSeconds), p.source, p.collectable, p.nextRunAt ? formatTime(p.nextRunAt) : 'due', formatTime(p.lastRunAt), p.lastCount]),
      ),
    )
    return {policies}
  }
}

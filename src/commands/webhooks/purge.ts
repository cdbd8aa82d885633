import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {durationFlag} from '../../cli/flags.js'
import {purgeWebhooks, type PurgeReport} from '../../generators/webhooks/operations.js'

export default class WebhooksPurge extends BaseCommand<typeof WebhooksPurge> {
  static override summary = 'Stop trying: matching queued requests (and floating webhook tasks) fail with reason "purged"'
  static override examples = ['<%= config.bin %> <%= command.id %> --hook 3 --older-than 2d --dry-run', '<%= config.bin %> <%= command.id %> --older-than 7d']
  static override flags = {
    hook: Flags.integer({summary: 'Only this webhook', min: 1}),
    'older-than': durationFlag({summary: 'Only requests created longer ago than this (e.g. 2h, 7d)'}),
    'dry-run': Flags.boolean({summary: 'Count what would be purged; change nothing'}),
  }

  async run(): Promise<PurgeReport> {
    const storage = await this.openStorage()
    const report = await purgeWebhooks(storage, {hookId: this.flags.hook, olderThanSeconds: this.flags['older-than'], dryRun: this.flags['dry-run']})
    this.log(`${report.dryRun ? 'Would purge' : 'Purged'} ${report.purgedRequests} queued request(s) and ${report.purgedFloating} floating task(s).`)
    return report
  }
}

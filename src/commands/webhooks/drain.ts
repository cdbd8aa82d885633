import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {renderTable, spinner} from '../../cli/render.js'
import {daemonOwnerId} from '../../daemon/daemon.js'
import {drainWebhooks, type DrainReport} from '../../generators/webhooks/operations.js'

export default class WebhooksDrain extends BaseCommand<typeof WebhooksDrain> {
  static override summary = 'Deliver everything queued now, in the foreground; floating webhook tasks are converted'
  static override description = `Each queued request is attempted once (failures follow the retry schedule); hooks stay serialised
with any running daemons. Floating webhook tasks in the task queue (e.g. imported from Phabricator) are
archived from the queue: their requests are delivered from the history.`
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --hook 3 --dry-run']
  static override flags = {
    hook: Flags.integer({summary: 'Only this webhook', min: 1}),
    'dry-run': Flags.boolean({summary: 'Count what would be delivered and converted; change nothing'}),
  }

  async run(): Promise<DrainReport> {
    const storage = await this.openStorage()
    const {config} = await this.config_()
    const progress = spinner('Draining webhooks', this.jsonEnabled()).start()
    let report: DrainReport
    try {
      report = await drainWebhooks(storage, {
        owner: `drain:${daemonOwnerId()}`,
        hookId: this.flags.hook,
        dryRun: this.flags['dry-run'],
        allowCidrs: config.webhooks?.allowCidrs,
        timeoutSeconds: config.webhooks?.timeoutSeconds,
        onProgress: (r) => (progress.text = `Delivered ${r.sent}, failed ${r.failed}, attempted ${r.attempted}`),
      })
    } finally {
      progress.stop()
    }
    if (report.dryRun) this.log(`Would attempt ${report.wouldAttempt} queued request(s) and convert ${report.convertedFloating} floating task(s).`)
    else
      this.log(
        renderTable(
          ['attempted', 'sent', 'failed', 'still queued', 'floating converted'],
          [[report.attempted, report.sent, report.failed, report.stillQueued, report.convertedFloating]],
        ),
      )
    return report
  }
}

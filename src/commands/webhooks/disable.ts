import {Args} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {disableHook, type WebhookView} from '../../generators/webhooks/hooks.js'

export default class WebhooksDisable extends BaseCommand<typeof WebhooksDisable> {
  static override summary = 'Disable a webhook; its queued requests fail with reason "hook disabled"'
  static override args = {id: Args.integer({description: 'Webhook id', required: true, min: 1})}

  async run(): Promise<{hook: WebhookView; failedRequests: number}> {
    const storage = await this.openStorage()
    const result = await disableHook(storage, this.args.id)
    this.log(`Webhook ${result.hook.id} disabled; ${result.failedRequests} queued request(s) failed.`)
    return result
  }
}

import {Args} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {TaskdError} from '../../core/errors.js'
import type {DeliveryResult} from '../../generators/webhooks/delivery.js'
import {testHook} from '../../generators/webhooks/operations.js'

export default class WebhooksTest extends BaseCommand<typeof WebhooksTest> {
  static override summary = 'Send one test request to a webhook now, in the foreground, and print the HTTP status'
  static override args = {id: Args.integer({description: 'Webhook id', required: true, min: 1})}

  async run(): Promise<{requestId: number; result: DeliveryResult}> {
    const storage = await this.openStorage()
    const {config} = await this.config_()
    const outcome = await testHook(storage, this.args.id, {allowCidrs: config.webhooks?.allowCidrs, timeoutSeconds: config.webhooks?.timeoutSeconds})
    const {result} = outcome
    if (!result.ok && !this.jsonEnabled()) {
      throw new TaskdError('E_INTERNAL', `test request ${outcome.requestId} failed: ${result.message}${result.status ? ` (HTTP ${result.status})` : ''}`)
    }
    this.log(`Test request ${outcome.requestId}: HTTP ${result.ok ? result.status : (result.status ?? '-')}`)
    if (!result.ok) process.exitCode = 1
    return outcome
  }
}

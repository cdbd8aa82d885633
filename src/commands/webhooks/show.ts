import {Args} from '@oclif/core'
import {sql} from 'kysely'

import {BaseCommand} from '../../cli/base-command.js'
import {formatTime, renderTable} from '../../cli/render.js'
import {getHook, type WebhookView} from '../../generators/webhooks/hooks.js'

export interface WebhooksShowResult extends WebhookView {
  requests: Record<string, number>
}

export default class WebhooksShow extends BaseCommand<typeof WebhooksShow> {
  static override summary = 'Show one webhook (secret masked) and its request counts'
  static override args = {id: Args.integer({description: 'Webhook id', required: true, min: 1})}

  async run(): Promise<WebhooksShowResult> {
    const storage = await this.openStorage()
    const hook = await getHook(storage, this.args.id)
    const rows = await storage.db.selectFrom('taskd_webhook_requests').select(['status', sql<number>`count(*)`.as('n')]).where('hook_id', '=', hook.id).groupBy('status').execute()
    const requests: Record<string, number> = {queued: 0, sent: 0, failed: 0}
    for (const r of rows) requests[r.status] = Number(r.n)
    this.log(
      renderTable(
        ['field', 'value'],
        [
          ['id', hook.id],
          ['name', hook.name],
          ['url', hook.url],
          ['status', hook.status],
          ['events', hook.events.join(' ')],
          ['secret', hook.secret],
          ['paused until', hook.pausedUntil ? formatTime(hook.pausedUntil) : ''],
          ['disabled reason', hook.disabledReason],
          ['requests', `queued ${requests.queued}, sent ${requests.sent}, failed ${requests.failed}`],
        ],
      ),
    )
    return {...hook, requests}
  }
}

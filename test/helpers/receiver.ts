import {createHmac, timingSafeEqual} from 'node:crypto'
import http from 'node:http'
import type {AddressInfo} from 'node:net'

import {Webhook} from 'standardwebhooks'

/** One request as a receiver saw it (the body is the raw text, exactly as signed). */
export interface Received {
  path: string
  headers: http.IncomingHttpHeaders
  body: string
  /** The `webhook-id` header. */
  webhookId: string
  /** The `id` field of the JSON body (`req_<request id>`). */
  bodyId: string
}

/**
 * What a receiver does with a request: answer (status, optional body and headers, after an optional
 * delay or once a promise settles), never answer ('hang'), or send 200 headers and never end the body.
 */
export type Answer = {status: number; body?: string; headers?: Record<string, string>; delayMs?: number} | 'hang' | 'hang-body'
export type Behaviour = (request: Received) => Answer | Promise<Answer>

export interface Receiver {
  /** `http://127.0.0.1:<port>` (or `http://[::1]:<port>`), no trailing slash. */
  base: string
  port: number
  received: Received[]
  /** Requests being answered now, overall and by path; the maxima ever reached. */
  inFlight: number
  maxInFlight: number
  maxInFlightByPath: Map<string, number>
  close(): Promise<void>
}

/** A real HTTP receiver on a loopback port chosen by the kernel. */
export async function startReceiver(behaviour: Behaviour, host: '127.0.0.1' | '::1' = '127.0.0.1'): Promise<Receiver> {
  const inFlightByPath = new Map<string, number>()
  const hanging = new Set<http.ServerResponse>()
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      let bodyId = ''
      try {
        bodyId = String((JSON.parse(body) as {id?: unknown}).id ?? '')
      } catch {
        bodyId = ''
      }
      const path = req.url ?? '/'
      const request: Received = {path, headers: req.headers, body, webhookId: String(req.headers['webhook-id'] ?? ''), bodyId}
      receiver.received.push(request)
      receiver.inFlight++
      receiver.maxInFlight = Math.max(receiver.maxInFlight, receiver.inFlight)
      const byPath = (inFlightByPath.get(path) ?? 0) + 1
      inFlightByPath.set(path, byPath)
      receiver.maxInFlightByPath.set(path, Math.max(receiver.maxInFlightByPath.get(path) ?? 0, byPath))
      const done = () => {
        receiver.inFlight--
        inFlightByPath.set(path, (inFlightByPath.get(path) ?? 1) - 1)
      }
      void Promise.resolve(behaviour(request)).then((answer) => {
        if (answer === 'hang' || answer === 'hang-body') {
          done()
          if (answer === 'hang-body') res.writeHead(200, {'content-type': 'text/plain'}).write('partial')
          hanging.add(res)
          return
        }
        const respond = () => {
          done()
          res.writeHead(answer.status, {'content-type': 'text/plain', ...answer.headers})
          res.end(answer.body ?? '')
        }
        if (answer.delayMs) setTimeout(respond, answer.delayMs)
        else respond()
      })
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, () => resolve())
  })
  const {port} = server.address() as AddressInfo
  const receiver: Receiver = {
    base: host === '::1' ? `http://[::1]:${port}` : `http://127.0.0.1:${port}`,
    port,
    received: [],
    inFlight: 0,
    maxInFlight: 0,
    maxInFlightByPath: new Map(),
    close: async () => {
      for (const res of hanging) res.destroy()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  return receiver
}

/** A loopback port nothing listens on: bound by the kernel, then closed (connecting is refused). */
export async function deadPort(): Promise<number> {
  const server = http.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  const {port} = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** Phabricator's header: hex HMAC-SHA256 of the raw body, keyed by the secret string as is. */
export function phabricatorSignatureValid(secret: string, body: string, header: string | string[] | undefined): boolean {
  if (typeof header !== 'string') return false
  const expected = Buffer.from(createHmac('sha256', secret).update(body).digest('hex'))
  const given = Buffer.from(header)
  return given.length === expected.length && timingSafeEqual(given, expected)
}

/** Standard Webhooks, checked by the official verifier (signature and timestamp tolerance). */
export function standardSignatureError(secret: string, request: Received): string | null {
  const headers: Record<string, string> = {}
  for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
    const value = request.headers[name]
    if (typeof value === 'string') headers[name] = value
  }
  try {
    new Webhook(secret).verify(request.body, headers)
    return null
  } catch (error) {
    return (error as Error).message || String(error)
  }
}

/**
 * A behaviour that verifies both signatures with the secret of the hook the path belongs to:
 * 204 when both hold, 401 (and a note in `rejections`) when either does not.
 */
export function verifyingBehaviour(secretsByPath: ReadonlyMap<string, string>, rejections: string[], then: Behaviour = () => ({status: 204})): Behaviour {
  return (request) => {
    const secret = secretsByPath.get(request.path)
    if (secret === undefined) {
      rejections.push(`${request.path}: no secret for this path`)
      return {status: 404}
    }
    const standard = standardSignatureError(secret, request)
    const phabricator = phabricatorSignatureValid(secret, request.body, request.headers['x-phabricator-webhook-signature'])
    if (standard !== null || !phabricator) {
      rejections.push(`${request.path} ${request.webhookId}: standard=${standard ?? 'ok'} phabricator=${phabricator ? 'ok' : 'bad'}`)
      return {status: 401, body: 'bad signature'}
    }
    return then(request)
  }
}

/** A promise the test settles by hand: a receiver holds a request open until `open()` is called. */
export function gate<T>(): {promise: Promise<T>; open(value: T): void} {
  let open!: (value: T) => void
  const promise = new Promise<T>((resolve) => (open = resolve))
  return {promise, open}
}

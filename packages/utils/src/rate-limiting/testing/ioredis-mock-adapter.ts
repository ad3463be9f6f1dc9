// Lets rate-limit-redis run on ioredis-mock, which has no call() and no SCRIPT command.
import { createHash } from 'node:crypto'

import type { RedisCommandClient } from '../config/types.js'

/**
 * What the adapter uses from an ioredis-mock instance. ioredis-mock's own types claim it is a full
 * ioredis client; it is not, so the adapter asks only for what it really calls.
 */
export interface IoredisMockLike {
  eval(script: string, numKeys: number | string, ...args: (string | number)[]): Promise<unknown>
}

/**
 * A RedisCommandClient over ioredis-mock for fast unit tests. It keeps SCRIPT LOAD'ed scripts
 * itself, answers EVALSHA with the mock's EVAL, and sends every other command to the mock's
 * method of the same name. Claims about real Redis belong in tests against a real redis-server.
 */
export function createIoredisMockAdapter(mock: IoredisMockLike): RedisCommandClient & {
  /** Forgets every loaded script, as SCRIPT FLUSH does on a real server. */
  flushScripts(): void
} {
  const scripts = new Map<string, string>()
  const methods = mock as unknown as Record<string, unknown>

  const script = (subcommand: string | undefined, args: string[]): unknown => {
    switch (subcommand?.toUpperCase()) {
      case 'LOAD': {
        const body = args[0] ?? ''
        const sha = createHash('sha1').update(body).digest('hex')
        scripts.set(sha, body)
        return sha
      }
      case 'FLUSH':
        scripts.clear()
        return 'OK'
      case 'EXISTS':
        return args.map((sha) => (scripts.has(sha.toLowerCase()) ? 1 : 0))
      default:
        throw new Error(`ERR unknown subcommand '${subcommand}' for SCRIPT in ioredis-mock adapter`)
    }
  }

  return {
    async call(command: string, ...args: string[]): Promise<unknown> {
      const name = command.toUpperCase()
      if (name === 'SCRIPT') return script(args[0], args.slice(1))
      if (name === 'EVALSHA') {
        const [sha = '', numKeys = '0', ...rest] = args
        const body = scripts.get(sha.toLowerCase())
        if (body === undefined) throw new Error('NOSCRIPT No matching script. Please use EVAL.')
        return mock.eval(body, numKeys, ...rest)
      }
      const method = methods[command.toLowerCase()]
      if (typeof method !== 'function') {
        throw new Error(`ERR unknown command '${command}': ioredis-mock has no such method`)
      }
      return (method as (...a: string[]) => Promise<unknown>).apply(mock, args)
    },
    flushScripts(): void {
      scripts.clear()
    },
  }
}

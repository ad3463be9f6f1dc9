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
 * A script written for Redis's Lua 5.1, wrapped so that it decides and answers alike in the mock's.
 * ioredis-mock runs scripts in fengari, a Lua 5.3 whose integers are 32 bits:
 * - a millisecond time (TIME's seconds x 1000) or a limit's max x windowMs wraps there. Every
 *   number a script reads goes through `tonumber`, so a `tonumber` that returns a float gives the
 *   script Lua 5.1's numbers (doubles, exact to 2^53);
 * - `unpack` is only `table.unpack`;
 * - the mock turns a reply table into an array only when fengari walks its keys from the last to
 *   the first, which a table filled from 1 upwards is not: the reply is copied from its end;
 * - the mock's TIME rounds the seconds and takes the microseconds from process.hrtime, so its
 *   milliseconds jump about within a second: TIME answers with `nowMs`, the clock's time.
 * In Redis the scripts run as written.
 */
const asLua51 = (body: string, nowMs: number): string =>
  [
    'local unpack = unpack or table.unpack',
    `local now_ms = ${nowMs}`,
    'local redis_53 = redis',
    'local redis = setmetatable({}, { __index = redis_53 })',
    'function redis.call(command, ...)',
    "  if string.upper(command) == 'TIME' then",
    '    return { tostring(math.floor(now_ms / 1000)), tostring((now_ms % 1000) * 1000) }',
    '  end',
    '  return redis_53.call(command, ...)',
    'end',
    'local tonumber_53 = tonumber',
    'local function tonumber(value, base)',
    '  local n',
    '  if base == nil then n = tonumber_53(value) else n = tonumber_53(value, base) end',
    '  if n == nil then return nil end',
    '  return n + 0.0',
    'end',
    'local function as_array(reply)',
    "  if type(reply) ~= 'table' or #reply == 0 then return reply end",
    '  local copy = {}',
    '  for i = #reply, 1, -1 do copy[i] = as_array(reply[i]) end',
    '  return copy',
    'end',
    'local function script()',
    body,
    'end',
    'return as_array(script())',
  ].join('\n')

/**
 * A RedisCommandClient over ioredis-mock for fast unit tests. It keeps SCRIPT LOAD'ed and EVAL'ed
 * scripts itself (as Redis's script cache does), answers EVALSHA with the mock's EVAL, runs every
 * script as Lua 5.1 would (asLua51), and sends every other command to the mock's
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
      if (name === 'EVAL') {
        const [body = '', numKeys = '0', ...rest] = args
        scripts.set(createHash('sha1').update(body).digest('hex'), body)
        return mock.eval(asLua51(body, Date.now()), numKeys, ...rest)
      }
      if (name === 'EVALSHA') {
        const [sha = '', numKeys = '0', ...rest] = args
        const body = scripts.get(sha.toLowerCase())
        if (body === undefined) throw new Error('NOSCRIPT No matching script. Please use EVAL.')
        return mock.eval(asLua51(body, Date.now()), numKeys, ...rest)
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

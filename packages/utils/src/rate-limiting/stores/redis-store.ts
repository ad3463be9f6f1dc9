// Builds rate-limit-redis's fixed-window store over any client that can send a raw command.
import { RedisStore, type RedisReply } from 'rate-limit-redis'

import type { RedisCommandClient } from '../types.js'

/**
 * A store whose keys are `{keyPrefix}:{type}:{client key}`. rate-limit-redis's script sets the
 * window TTL on the first hit and reloads itself once on NOSCRIPT (after SCRIPT FLUSH or a restart).
 */
export function createRedisStore(client: RedisCommandClient, keyPrefix: string, type: string): RedisStore {
  return new RedisStore({
    prefix: `${keyPrefix}:${type}:`,
    sendCommand: (command: string, ...args: string[]) => client.call(command, ...args) as Promise<RedisReply>,
  })
}

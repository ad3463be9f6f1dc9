// Builds rate-limit-redis's fixed-window store over any client that can send a raw command.
import calculateSlot from 'cluster-key-slot'
import { Cluster } from 'ioredis'
import { RedisStore, type RedisReply } from 'rate-limit-redis'

import type { RedisCommandClient } from '../config/types.js'
import { batchedCalls, sendsThrough, watchesWrites } from './batched-calls.js'
import { Unanswered } from './round-trips.js'
import { withTimeout } from './deadlines.js'

/**
 * A store whose keys are `{keyPrefix}:{name}:{client key}`. rate-limit-redis's script sets the
 * window TTL on the first hit and reloads itself once on NOSCRIPT (after SCRIPT FLUSH or a restart).
 */
export function createRedisStore(
  client: RedisCommandClient,
  keyPrefix: string,
  type: string,
  timeoutMs = 1000,
): RedisStore {
  const prefix = `${keyPrefix}:${type}:`
  const cluster = clusterOf(client)
  if (cluster === undefined) {
    // One pipeline per tick for a single server or Sentinel (batched-calls.ts).
    const send = batchedCalls(client, timeoutMs)
    const store = new RedisStore({
      prefix,
      sendCommand: (command: string, ...args: string[]) => send(command, ...args) as Promise<RedisReply>,
    })
    sendsThrough(store, send)
    return store
  }
  // On a cluster every command touches one key, so ioredis routes it to the slot's master (and
  // follows MOVED and ASK). SCRIPT LOAD has no key: it goes to every master, so EVALSHA finds the
  // script wherever the key lives (and a NOSCRIPT after a failover reloads it everywhere).
  // Each call is written as ioredis routes it: its wait from then on is the master's.
  const unanswered = new Unanswered()
  const store = new RedisStore({
    prefix,
    sendCommandCluster: async ({ key, command }) => {
      const [name = '', ...args] = command
      if (name.toUpperCase() !== 'SCRIPT' || args[0]?.toUpperCase() !== 'LOAD') {
        const reply = cluster.call(name, ...args) as Promise<RedisReply>
        const answered = unanswered.written()
        reply.then(answered, answered)
        return reply
      }
      const masters = cluster.nodes('master')
      // A master that is down or hung cannot take it: each load may take SCRIPT_LOAD_TIMEOUT_MS.
      const loads = masters.map((node) =>
        withTimeout(node.call('SCRIPT', ...args) as Promise<RedisReply>, SCRIPT_LOAD_TIMEOUT_MS),
      )
      // After NOSCRIPT (a replica promoted: SCRIPT LOAD is not replicated) rate-limit-redis retries
      // with the key: the master that will run its EVALSHA is the one that must have the script.
      const owner = key === undefined ? undefined : cluster.slots[calculateSlot(key)]?.[0]
      const index = masters.findIndex((node) => `${node.options.host}:${node.options.port}` === owner)
      if (index !== -1) {
        for (const load of loads) load.catch(() => undefined)
        return loads[index]!
      }
      // Otherwise every master that answers must have it before EVALSHA runs anywhere.
      const results = await Promise.allSettled(loads)
      const loaded = results.find((result) => result.status === 'fulfilled')
      if (loaded === undefined)
        throw (results[0] as PromiseRejectedResult | undefined)?.reason ?? new Error('no master')
      return loaded.value
    },
  })
  watchesWrites(store, { oldestUnanswered: () => unanswered.oldest(), forgetUnanswered: () => unanswered.forget() })
  return store
}

/** How long one master may take to load a script before the others go on without it. */
const SCRIPT_LOAD_TIMEOUT_MS = 1000

/** The client as an ioredis Cluster, when it is one. */
export function clusterOf(client: RedisCommandClient): Cluster | undefined {
  return typeof (client as Partial<Cluster>).nodes === 'function' && client instanceof Cluster ? client : undefined
}

// A policy counted in Redis: one script call per decision, on one key per client.
import { createHash } from 'node:crypto'

import { MODELS, type PolicyAlgorithm } from './algorithms.js'
import { BLOCK_SCRIPT } from './policy-scripts.js'
import type { CheckedLimit, LimitState, PolicyDecision } from './limits.js'

/** Sends one Redis command and answers with its reply (batched-calls.ts's sender fits). */
export type SendCommand = (command: string, ...args: string[]) => Promise<unknown>

/**
 * The sliding window or the token bucket in Redis. Each decision is one EVALSHA on the client's
 * key `{prefix}{tag}:{client key}`; after a NOSCRIPT (a restart, SCRIPT FLUSH, a failover) it is
 * one EVAL, which also loads the script again. Redis's TIME is the clock, so every process of the
 * fleet decides by the one clock of the Redis that holds the key. A test may pass `now` instead;
 * its keys then get no TTL, since Redis cannot expire them by a clock it does not have.
 */
export class RedisPolicyStore {
  /** The Lua source, for SCRIPT LOAD. */
  readonly script: string
  readonly #sha: string
  readonly #prefix: string
  /** Each list of limits' max and windowMs, as the script's arguments after now and cost. */
  readonly #limitArgs = new WeakMap<readonly CheckedLimit[], readonly string[]>()
  /** The store's own limits' arguments, without a lookup: every request of a limiter without policies. */
  readonly #ownArgs: readonly string[]

  constructor(
    private readonly send: SendCommand,
    algorithm: PolicyAlgorithm,
    readonly limits: readonly CheckedLimit[],
    prefix: string,
    /** Whole ms since the epoch for the script to decide by, in place of Redis's TIME (tests: no TTL is set). */
    private readonly now?: () => number,
  ) {
    const model = MODELS[algorithm]
    this.script = model.script
    this.#sha = createHash('sha1').update(model.script).digest('hex')
    this.#prefix = `${prefix}${model.tag}:`
    this.#ownArgs = argsOf(limits)
  }

  /** The Redis key of a client. */
  keyOf(key: string): string {
    return this.#prefix + key
  }

  /**
   * EVALSHA's arguments for a request of `cost` for `key` by `limits`: the script's SHA1, its key,
   * and its ARGV.
   */
  evalshaArgs(key: string, cost: number, limits: readonly CheckedLimit[] = this.limits, force = false): string[] {
    let limitArgs = limits === this.limits ? this.#ownArgs : this.#limitArgs.get(limits)
    if (limitArgs === undefined) {
      limitArgs = argsOf(limits)
      this.#limitArgs.set(limits, limitArgs)
    }
    return [
      this.#sha,
      '1',
      this.keyOf(key),
      this.now === undefined ? '' : String(this.now()),
      // `f<cost>`: an operator's forced spend (policy-scripts.ts).
      force ? `f${cost}` : String(cost),
      ...limitArgs,
    ]
  }

  /**
   * Decides a request of `cost` for `key` by `limits` (the store's own unless given), and spends it
   * if every limit allows it. A limit's state is kept by its place in the list (the script's
   * fields are numbered), so a client whose policy changes keeps its counts.
   */
  async consume(
    key: string,
    cost: number,
    limits: readonly CheckedLimit[] = this.limits,
    force = false,
  ): Promise<PolicyDecision> {
    let reply: unknown
    try {
      reply = await this.send('EVALSHA', ...this.evalshaArgs(key, cost, limits, force))
    } catch (error) {
      if (!isNoScript(error)) throw error
      return this.consumeByEval(key, cost, limits, force)
    }
    return this.decision(reply, limits)
  }

  /** The same with the script itself (EVAL), which loads it again: for after a NOSCRIPT. */
  async consumeByEval(
    key: string,
    cost: number,
    limits: readonly CheckedLimit[] = this.limits,
    force = false,
  ): Promise<PolicyDecision> {
    const [, ...rest] = this.evalshaArgs(key, cost, limits, force)
    return this.decision(await this.send('EVAL', this.script, ...rest), limits)
  }

  /**
   * Refuses every request of `key` for `ms`, by Redis's clock (or the test's): field `x` of its
   * hash, which every policy script reads, and a TTL that outlasts it. Answers when it ends.
   */
  async block(key: string, ms: number): Promise<number> {
    const now = this.now === undefined ? '' : String(this.now())
    return Number(await this.send('EVAL', BLOCK_SCRIPT, '1', this.keyOf(key), now, String(ms)))
  }

  /** Where `key` stands by `limits`, spending nothing: a cost of 0 fits every limit and writes nothing new. */
  get(key: string, limits: readonly CheckedLimit[] = this.limits): Promise<PolicyDecision> {
    return this.consume(key, 0, limits)
  }

  /** Forgets `key`'s state: it starts afresh, with every limit whole. */
  async resetKey(key: string): Promise<void> {
    await this.send('DEL', this.keyOf(key))
  }

  /** The decision in the script's reply; an Error for a reply of another shape. */
  decision(reply: unknown, limits: readonly CheckedLimit[] = this.limits): PolicyDecision {
    if (!Array.isArray(reply) || reply.length !== 3 + 2 * limits.length) {
      throw new Error(`Redis answered the policy script with ${JSON.stringify(reply)}`)
    }
    const numbers = reply.map(Number)
    const states: LimitState[] = limits.map(({ name, max, windowMs }, i) => ({
      name,
      max,
      windowMs,
      remaining: numbers[3 + 2 * i]!,
      resetMs: numbers[4 + 2 * i]!,
    }))
    return { allowed: numbers[0] === 1, retryMs: numbers[1]!, blockedMs: numbers[2]!, limits: states }
  }
}

/** The limits' max and windowMs, as the script's arguments after now and cost. */
const argsOf = (limits: readonly CheckedLimit[]): readonly string[] =>
  limits.flatMap((limit) => [String(limit.max), String(limit.windowMs)])

/** Redis's answer to EVALSHA for a script it does not have (after SCRIPT FLUSH, a restart, a failover). */
export const isNoScript = (error: unknown): boolean =>
  /^NOSCRIPT(?:\s|$)/.test(String((error as Error | undefined)?.message))

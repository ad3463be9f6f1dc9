// Redis calls made in the same tick, sent as one pipeline: one write carries many requests' EVALSHA.
import type { RedisCommandClient } from '../config/types.js'
import { RoundTrips, Unanswered } from './round-trips.js'

/** What a client needs for batching: ioredis's pipeline(). */
interface PipelineClient extends RedisCommandClient {
  pipeline(): {
    call(command: string, ...args: string[]): unknown
    exec(): Promise<[Error | null, unknown][] | null>
  }
}

/** A command waiting to be sent, and where its answer goes. */
export interface QueuedCommand {
  readonly command: string
  readonly args: readonly string[]
  resolve(value: unknown): void
  reject(error: unknown): void
}

/**
 * How long a pipeline in flight holds the next one back. On a shared machine a round trip's tail is
 * several ms (performance.md, Latency), and a request queued behind such a round trip would wait
 * for it and then for its own. Most round trips answer well within 1 ms (median 125 µs in the
 * bench's probe), so most batches are not cut short; the CPU at saturation measured no worse.
 * Node's timers cannot wait less than 1 ms.
 */
export const HOLD_BACK_MS = 1

/**
 * A batch in flight holds the next one back only while Redis answers within this: on the same host.
 * Past it, every tick's batch goes out at once, as many in flight as the traffic makes, since a
 * request queued behind a round trip of a millisecond or more would wait that much longer.
 */
export const HOLD_BACK_WITHIN_MS = 0.25

/** Sends a command and answers with its reply; `enqueue` sends one that answers through its own methods. */
export interface BatchedSend {
  (command: string, ...args: string[]): Promise<unknown>
  /** The same, with no promise of its own: the hot path's caller is already one object per call. */
  enqueue(queued: QueuedCommand): void
  /**
   * performance.now() when the oldest write Redis has not answered yet went to the client, or
   * undefined when every write has its answer. This is how long Redis itself has kept us waiting:
   * the time a command spent in our own queue, or a reply in our socket, is not in it.
   */
  oldestUnanswered(): number | undefined
  /**
   * Forgets the writes still unanswered. For when the connection is lost: ioredis never settles a
   * pipeline that was in flight then, and a write that will never be answered must not make Redis
   * look slow once it is back.
   */
  forgetUnanswered(): void
}

/**
 * A `call` that sends commands in pipelines, one pipeline in flight at a time unless it is slow:
 * while one waits for Redis, the next requests' commands queue, and go out together in one write
 * as soon as it is answered, or once it has waited `holdBackMs`. Under load one round trip then
 * carries many requests' EVALSHA; with one request at a time it is a plain call. Each command still
 * gets its own answer or error (a NOSCRIPT goes to its caller, who reloads the script).
 *
 * This is ioredis's enableAutoPipelining, minus its trap for us: with autoResendUnfulfilledCommands
 * off, a pipeline in flight when the connection drops never settles, and ioredis then holds every
 * later auto-pipelined command behind it, for ever. Here a pipeline that has not answered within
 * `holdBackMs` (or `timeoutMs`, storeTimeoutMs, if shorter) stops holding the next one back: a
 * slow round trip delays the requests queued behind it by at most that much, and a lost one does
 * not hold them until their callers fail.
 *
 * Holding back pays only while Redis is near. Once a block of round trips (RoundTrips) has all
 * taken HOLD_BACK_WITHIN_MS or more, Redis is a network hop away, and each tick's commands go out
 * at once, however many pipelines are in flight: one round trip per request still, and no request
 * waits for another's.
 */
export function batchedCalls(client: RedisCommandClient, timeoutMs: number, holdBackMs = HOLD_BACK_MS): BatchedSend {
  const unanswered = new Unanswered()
  if (typeof (client as Partial<PipelineClient>).pipeline !== 'function') return oneByOne(client, unanswered)
  const pipelined = client as PipelineClient
  const roundTrips = new RoundTrips()
  let queue: QueuedCommand[] = []
  /** A batch in flight is holding the next one back. */
  let holding = false

  const send = (): void => {
    if (holding || queue.length === 0) return
    const batch = queue
    queue = []
    // Redis a hop away: holding back would add up to a round trip to every request behind it.
    const holds = roundTrips.shortest() < HOLD_BACK_WITHIN_MS
    holding = holds
    let released = !holds
    const release = (): void => {
      if (released) return
      released = true
      clearTimeout(timer)
      holding = false
      send()
    }
    const timer = holds ? setTimeout(release, Math.min(timeoutMs, holdBackMs)) : undefined
    // Written now: from here on, the wait is Redis's (and the network's), not our queue's.
    const answered = unanswered.written()
    write(client, pipelined, batch, () => {
      roundTrips.record(answered())
      release()
    })
  }

  const enqueue = (queued: QueuedCommand): void => {
    queue.push(queued)
    // The first command of an idle client waits one tick, so the others of this tick join it.
    if (!holding && queue.length === 1) process.nextTick(send)
  }
  return Object.assign(
    (command: string, ...args: string[]) =>
      new Promise((resolve, reject) => enqueue({ command, args, resolve, reject })),
    { enqueue, ...writeWatch(unanswered) },
  )
}

/**
 * Writes `batch` to Redis: one command as itself, more as one pipeline. `settled` runs first, once,
 * when Redis answers or the write fails; then each command's caller gets its answer. A client may
 * throw instead of answering (not connected, say): the batch fails at once.
 */
function write(
  client: RedisCommandClient,
  pipelined: PipelineClient,
  batch: readonly QueuedCommand[],
  settled: () => void,
): void {
  const failAll = (error: unknown): void => {
    settled()
    settleEach(batch, (queued) => queued.reject(error))
  }
  try {
    if (batch.length === 1) {
      const [only] = batch as [QueuedCommand]
      client.call(only.command, ...only.args).then((value) => {
        settled()
        only.resolve(value)
      }, failAll)
      return
    }
    const pipeline = pipelined.pipeline()
    for (const { command, args } of batch) pipeline.call(command, ...args)
    pipeline.exec().then((results) => {
      settled()
      settleEach(batch, (queued, index) => {
        const [error, value] = results?.[index] ?? [new Error('Redis pipeline gave no answer'), undefined]
        if (error) queued.reject(error)
        else queued.resolve(value)
      })
    }, failAll)
  } catch (error) {
    failAll(error)
  }
}

/** What a sender tells of its writes (BatchedSend's oldestUnanswered and forgetUnanswered). */
const writeWatch = (unanswered: Unanswered): WriteWatch => ({
  oldestUnanswered: () => unanswered.oldest(),
  forgetUnanswered: () => unanswered.forget(),
})

/** A sender for a client without pipeline(): each command is its own write. */
function oneByOne(client: RedisCommandClient, unanswered: Unanswered): BatchedSend {
  const callNow = (command: string, args: readonly string[]): Promise<unknown> => {
    const reply = client.call(command, ...args)
    const answered = unanswered.written()
    reply.then(answered, answered)
    return reply
  }
  return Object.assign(async (command: string, ...args: string[]) => callNow(command, args), {
    enqueue(queued: QueuedCommand): void {
      let reply: Promise<unknown>
      try {
        reply = callNow(queued.command, queued.args)
      } catch (error) {
        return queued.reject(error)
      }
      reply.then(
        (value) => queued.resolve(value),
        (error: unknown) => queued.reject(error),
      )
    },
    ...writeWatch(unanswered),
  })
}

/** The sender under each store that sends through one, for the guard's hot path (guarded-store.ts). */
const senders = new WeakMap<object, BatchedSend>()

/** Records that `store` sends its commands through `send`. */
export function sendsThrough(store: object, send: BatchedSend): void {
  senders.set(store, send)
  watchesWrites(store, send)
}

/** What tells how long Redis has kept a store's writes unanswered (BatchedSend has it). */
export type WriteWatch = Pick<BatchedSend, 'oldestUnanswered' | 'forgetUnanswered'>

const watches = new WeakMap<object, WriteWatch>()

/** Records that `watch` sees the writes of `store`. */
export function watchesWrites(store: object, watch: WriteWatch): void {
  watches.set(store, watch)
}

/** What sees the writes of `store`; undefined where nothing does. */
export const writeWatchOf = (store: object): WriteWatch | undefined => watches.get(store)

/** The sender `store` sends through; undefined for one that does not batch (a cluster's). */
export const batchedSendOf = (store: object): BatchedSend | undefined => senders.get(store)

/**
 * Calls `settle` for every item, even if it throws for one (the caller's code runs in it: a
 * breaker's logger, say); then rethrows the first such error. One bad answer must not leave the
 * other calls waiting.
 */
export function settleEach<T>(items: Iterable<T>, settle: (item: T, index: number) => void): void {
  let thrown: { error: unknown } | undefined
  let index = 0
  for (const item of items) {
    try {
      settle(item, index++)
    } catch (caught) {
      thrown ??= { error: caught }
    }
  }
  if (thrown !== undefined) throw thrown.error
}

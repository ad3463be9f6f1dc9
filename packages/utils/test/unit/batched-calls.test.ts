// Commands queued while one pipeline is in flight go out together; a pipeline that never answers holds nothing back.
import { describe, expect, it } from 'vitest'

import { batchedCalls, HOLD_BACK_WITHIN_MS } from '#src/stores/batched-calls.js'
import { RoundTrips } from '#src/stores/round-trips.js'
import { waitFor } from '#test/support/http.js'

type Pending = { resolve: (value: unknown) => void; reject: (error: unknown) => void }

/** A client whose calls and pipelines answer only when the test says so. */
function fakeClient() {
  const calls: { command: string; args: string[]; answer: Pending }[] = []
  const pipelines: { commands: string[][]; answer: Pending }[] = []
  return {
    calls,
    pipelines,
    call: (command: string, ...args: string[]) =>
      new Promise((resolve, reject) => void calls.push({ command, args, answer: { resolve, reject } })),
    pipeline() {
      const commands: string[][] = []
      return {
        call: (command: string, ...args: string[]) => void commands.push([command, ...args]),
        exec: () =>
          new Promise<[Error | null, unknown][] | null>(
            (resolve, reject) => void pipelines.push({ commands, answer: { resolve: resolve as never, reject } }),
          ),
      }
    },
  }
}

/** Not a sleep: one turn of the event loop, after which every nextTick and answer queued has run. */
const tick = () => new Promise((done) => setImmediate(done))

describe('batchedCalls', () => {
  it('sends a lone command as a plain call, and queues the next ones into one pipeline meanwhile', async () => {
    const client = fakeClient()
    const send = batchedCalls(client, 1000, 60_000)
    const first = send('EVALSHA', 'a')
    await tick()
    expect(client.calls.map((c) => c.args)).toEqual([['a']])
    const second = send('EVALSHA', 'b')
    const third = send('EVALSHA', 'c')
    await tick()
    expect(client.pipelines).toHaveLength(0)
    client.calls[0]!.answer.resolve(1)
    expect(await first).toBe(1)
    await tick()
    expect(client.pipelines.map((p) => p.commands)).toEqual([
      [
        ['EVALSHA', 'b'],
        ['EVALSHA', 'c'],
      ],
    ])
    const noscript = new Error('NOSCRIPT No matching script')
    client.pipelines[0]!.answer.resolve([
      [noscript, undefined],
      [null, 3],
    ])
    await expect(second).rejects.toBe(noscript)
    expect(await third).toBe(3)
  })

  it('tells when its oldest unanswered write went out: not while a command only waits in the queue', async () => {
    const client = fakeClient()
    const send = batchedCalls(client, 1000, 60_000)
    const before = performance.now()
    const first = send('EVALSHA', 'a')
    // Queued, not yet written: Redis keeps nothing waiting.
    expect(send.oldestUnanswered()).toBeUndefined()
    await tick()
    const written = send.oldestUnanswered()
    expect(written).toBeGreaterThanOrEqual(before)
    const second = send('EVALSHA', 'b')
    await tick()
    // b waits behind a: the oldest write is still a's.
    expect(send.oldestUnanswered()).toBe(written)
    client.calls[0]!.answer.resolve(1)
    await first
    await tick()
    // Now b is written, alone: the oldest write is b's.
    expect(send.oldestUnanswered()).toBeGreaterThan(written!)
    client.calls[1]!.answer.resolve(2)
    await second
    expect(send.oldestUnanswered()).toBeUndefined()
  })

  it('forgets the writes a lost connection will never answer', async () => {
    const client = fakeClient()
    const send = batchedCalls(client, 1000, 60_000)
    void send('EVALSHA', 'a')
    await tick()
    expect(send.oldestUnanswered()).toBeDefined()
    send.forgetUnanswered()
    expect(send.oldestUnanswered()).toBeUndefined()
    // An answer that comes after all changes nothing.
    client.calls[0]!.answer.resolve(1)
    await tick()
    expect(send.oldestUnanswered()).toBeUndefined()
  })

  it('fails every command of a pipeline that fails', async () => {
    const client = fakeClient()
    const send = batchedCalls(client, 1000, 60_000)
    const held = send('PING')
    await tick()
    const [a, b] = [send('EVALSHA', 'a'), send('EVALSHA', 'b')]
    client.calls[0]!.answer.resolve('PONG')
    await held
    await tick()
    const closed = new Error('Connection is closed.')
    client.pipelines[0]!.answer.reject(closed)
    await expect(a).rejects.toBe(closed)
    await expect(b).rejects.toBe(closed)
  })

  it('stops waiting for a pipeline that never answers after timeoutMs', async () => {
    const client = fakeClient()
    const send = batchedCalls(client, 20, 60_000)
    void send('EVALSHA', 'lost')
    await tick()
    const later = send('EVALSHA', 'later')
    // It has 50 ms: looking every 5 ms until 45 ms, the last look comes by then.
    await waitFor(
      'the next command to go out once the lost one has had its 20 ms',
      () => client.calls.length >= 2,
      45,
      5,
    )
    expect(client.calls.map((c) => c.args)).toEqual([['lost'], ['later']])
    client.calls[1]!.answer.resolve(7)
    expect(await later).toBe(7)
  })

  it('stops holding the next pipeline back after holdBackMs, though the first has not answered', async () => {
    const client = fakeClient()
    const send = batchedCalls(client, 60_000, 200)
    const slow = send('EVALSHA', 'slow')
    await tick()
    const next = send('EVALSHA', 'next')
    await tick()
    expect(client.calls.map((c) => c.args)).toEqual([['slow']])
    // It has 400 ms: looking every 5 ms until 395 ms, the last look comes by then.
    await waitFor('the next command to go out after holdBackMs (200 ms)', () => client.calls.length >= 2, 395, 5)
    expect(client.calls.map((c) => c.args)).toEqual([['slow'], ['next']])
    client.calls[1]!.answer.resolve('second')
    client.calls[0]!.answer.resolve('first')
    expect(await next).toBe('second')
    expect(await slow).toBe('first')
  })

  it('holds nothing back once a block of round trips has all taken longer than HOLD_BACK_WITHIN_MS', async () => {
    const client = fakeClient()
    const send = batchedCalls(client, 60_000, 60_000)
    // A block of far round trips: each answered once a millisecond has passed since it went out.
    for (let i = 0; i < RoundTrips.BLOCK; i++) {
      const answer = send('EVALSHA', String(i))
      await tick()
      const wentOut = performance.now()
      while (performance.now() - wentOut < 4 * HOLD_BACK_WITHIN_MS) await tick()
      client.calls.at(-1)!.answer.resolve(i)
      expect(await answer).toBe(i)
    }
    // Now a command in flight holds the next one back no longer: each goes out in its own tick.
    const first = send('EVALSHA', 'first')
    await tick()
    const second = send('EVALSHA', 'second')
    await tick()
    expect(client.calls.slice(RoundTrips.BLOCK).map((c) => c.args)).toEqual([['first'], ['second']])
    client.calls.at(-1)!.answer.resolve('b')
    client.calls.at(-2)!.answer.resolve('a')
    expect([await first, await second]).toEqual(['a', 'b'])
  })

  it("answers every command of a pipeline even when one answer's code throws, then rethrows that error", async () => {
    const client = fakeClient()
    const send = batchedCalls(client, 1000, 60_000)
    const first = send('PING')
    await tick()
    const answered: string[] = []
    const thrown: unknown[] = []
    const onUnhandled = (reason: unknown) => thrown.push(reason)
    process.on('unhandledRejection', onUnhandled)
    try {
      for (const name of ['a', 'b', 'c']) {
        send.enqueue({
          command: 'EVALSHA',
          args: [name],
          resolve: () => undefined,
          reject: () => {
            answered.push(name)
            if (name === 'a') throw new Error('a logger threw')
          },
        })
      }
      client.calls[0]!.answer.resolve('PONG')
      await first
      await tick()
      client.pipelines[0]!.answer.reject(new Error('Connection is closed.'))
      await tick()
      await tick()
      expect(answered).toEqual(['a', 'b', 'c'])
      expect(thrown).toEqual([new Error('a logger threw')])
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })

  it.each([
    ['with pipeline()', true],
    ['without pipeline()', false],
  ])('fails the command when a client %s throws instead of answering', async (_name, pipelines) => {
    const call = () => {
      throw new Error('not connected')
    }
    const send = batchedCalls(pipelines ? { ...fakeClient(), call } : { call }, 1000)
    const reasons: unknown[] = []
    send.enqueue({ command: 'EVALSHA', args: [], resolve: () => undefined, reject: (error) => reasons.push(error) })
    await tick()
    expect(reasons).toEqual([new Error('not connected')])
    // And the next command is not held back behind it.
    await expect(send('PING')).rejects.toThrow('not connected')
  })

  it('calls straight through a client without pipeline()', async () => {
    const calls: string[] = []
    const send = batchedCalls({ call: (command: string) => Promise.resolve(calls.push(command)) }, 1000)
    expect(await send('PING')).toBe(1)
    const answers: unknown[] = []
    send.enqueue({ command: 'PING', args: [], resolve: (value) => answers.push(value), reject: () => undefined })
    await tick()
    expect(answers).toEqual([2])
  })

  it('sends enqueued commands in the same pipelines, and answers each through its own resolve or reject', async () => {
    const client = fakeClient()
    const send = batchedCalls(client, 1000, 60_000)
    const answers: string[] = []
    const queued = (name: string) => ({
      command: 'EVALSHA',
      args: [name],
      resolve: (value: unknown) => answers.push(`${name}=${String(value)}`),
      reject: (error: unknown) => answers.push(`${name}!${(error as Error).message}`),
    })
    send.enqueue(queued('a'))
    await tick()
    expect(client.calls.map((c) => c.args)).toEqual([['a']])
    const b = send('EVALSHA', 'b')
    send.enqueue(queued('c'))
    client.calls[0]!.answer.resolve(1)
    await tick()
    expect(client.pipelines.map((p) => p.commands)).toEqual([
      [
        ['EVALSHA', 'b'],
        ['EVALSHA', 'c'],
      ],
    ])
    client.pipelines[0]!.answer.resolve([
      [null, 2],
      [new Error('NOSCRIPT No matching script'), undefined],
    ])
    expect(await b).toBe(2)
    expect(answers).toEqual(['a=1', 'c!NOSCRIPT No matching script'])
  })
})

describe('RoundTrips', () => {
  it('is 0 until a block is full, so a new client holds back; then the shortest of the last blocks', () => {
    const trips = new RoundTrips()
    for (let i = 0; i < RoundTrips.BLOCK - 1; i++) trips.record(5)
    expect(trips.shortest()).toBe(0)
    trips.record(2)
    expect(trips.shortest()).toBe(2)
    // A shorter sample counts at once; a longer block takes over only once it is full.
    trips.record(0.1)
    expect(trips.shortest()).toBe(0.1)
    for (let i = 1; i < RoundTrips.BLOCK; i++) trips.record(3)
    expect(trips.shortest()).toBe(0.1)
    for (let i = 0; i < RoundTrips.BLOCK; i++) trips.record(3)
    expect(trips.shortest()).toBe(3)
  })
})

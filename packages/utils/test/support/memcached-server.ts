// Starts a real memcached on a free loopback port for one test file, and stops it by pid.
import { spawn, spawnSync } from 'node:child_process'

import { freePort } from './ports.js'
import { stopProcess } from './redis-server.js'

export const MEMCACHED_INSTALL_HINT =
  'memcached is not installed: the custom-store tests run a published community Store on it. Install it with ' +
  '`sudo apt-get install -y memcached` (Debian/Ubuntu) or `brew install memcached` (macOS).'

/** True when a memcached binary can be run. */
export function memcachedAvailable(): boolean {
  return spawnSync('memcached', ['-V'], { stdio: 'ignore' }).status === 0
}

export interface TestMemcached {
  readonly port: number
  readonly location: string
  /** Kills it (SIGKILL), as a crash would. */
  kill(): Promise<void>
  stop(): Promise<void>
}

/** A memcached on `port` (a free one unless given), once it accepts connections. */
export async function startMemcached(port?: number): Promise<TestMemcached> {
  // A port found free may be taken before memcached binds it (by any outgoing connection's local
  // port): on a port of our choosing, a fresh one is tried.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOn(port ?? (await freePort()))
    } catch (error) {
      if (port !== undefined || attempt === 3) throw error
    }
  }
}

async function startOn(chosen: number): Promise<TestMemcached> {
  // -U 0: no UDP; -l: loopback only; -m 16: 16 MB is plenty; -vv: it says when it listens.
  // memcached refuses to run as root unless told whom to run as.
  const asUser = process.getuid?.() === 0 ? ['-u', 'nobody'] : []
  const child = spawn('memcached', ['-p', String(chosen), '-U', '0', '-l', '127.0.0.1', '-m', '16', '-vv', ...asUser], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  let output = ''
  await new Promise<void>((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer)
      reject(new Error(`memcached ${why} on ${chosen}:\n${output}`))
    }
    const timer = setTimeout(() => {
      fail('did not listen within 10 s')
      void stopProcess(child)
    }, 10_000)
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      if (!/server listening/.test(output)) return
      clearTimeout(timer)
      child.off('exit', onExit)
      resolve()
    }
    const onExit = (code: number | null) => fail(`exited with ${code} before listening`)
    child.stderr.on('data', onData)
    child.once('exit', onExit)
  })
  // It logs every command at -vv: read and drop the rest.
  child.stderr.removeAllListeners('data')
  child.stderr.resume()
  return {
    port: chosen,
    location: `127.0.0.1:${chosen}`,
    async kill() {
      child.kill('SIGKILL')
      await exited
    },
    stop: () => stopProcess(child),
  }
}

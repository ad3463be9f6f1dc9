import type { ChildProcess } from 'node:child_process'

export interface LaunchOptions {
  /** redis-server's arguments (a config file first, if any). */
  readonly args: readonly string[]
  /** Its working directory. */
  readonly cwd?: string
  /** Pins it to this CPU with taskset. */
  readonly cpu?: number
  /** The line that says it is ready. @default 'Ready to accept connections' */
  readonly ready?: string
}

export interface LaunchedRedis {
  readonly child: ChildProcess
  /** Everything it has printed, stdout and stderr. */
  readonly output: () => string
}

export function launchRedis(options: LaunchOptions): Promise<LaunchedRedis>

// Where metaverses are stored: the interface the routes use, and the in-memory default.
import { randomUUID } from 'node:crypto'

export interface Metaverse {
  readonly id: string
  readonly name: string
  readonly description: string | null
  readonly createdAt: string
  readonly updatedAt: string
}

/** What a create or update may set; already checked by the routes. */
export interface MetaverseInput {
  readonly name: string
  readonly description: string | null
}

/** The storage the routes need. Any database can sit behind it. */
export interface MetaversesDataSource {
  list(page: { readonly limit: number; readonly offset: number }): Promise<Metaverse[]>
  get(id: string): Promise<Metaverse | undefined>
  create(input: MetaverseInput): Promise<Metaverse>
  /** The updated metaverse, or undefined when there is none with this id. */
  update(id: string, input: MetaverseInput): Promise<Metaverse | undefined>
  /** False when there is none with this id. */
  delete(id: string): Promise<boolean>
}

/** Thrown by create() when the store is full. The routes answer 507. */
export class DataSourceFullError extends Error {
  readonly code = 'ERR_DATA_SOURCE_FULL'
  constructor(capacity: number) {
    super(`The data source is full (${capacity} metaverses)`)
    this.name = new.target.name
  }
}

/** The default in-memory capacity: a flood of creates cannot grow the process without bound. */
export const DEFAULT_MEMORY_CAPACITY = 10_000

/** A data source in process memory, in insertion order. Lost on restart; for development and tests. */
export function createInMemoryDataSource(capacity = DEFAULT_MEMORY_CAPACITY): MetaversesDataSource {
  const rows = new Map<string, Metaverse>()
  return {
    list: ({ limit, offset }) => Promise.resolve([...rows.values()].slice(offset, offset + limit)),
    get: (id) => Promise.resolve(rows.get(id)),
    create(input) {
      if (rows.size >= capacity) return Promise.reject(new DataSourceFullError(capacity))
      const now = new Date().toISOString()
      const row: Metaverse = { id: randomUUID(), ...input, createdAt: now, updatedAt: now }
      rows.set(row.id, row)
      return Promise.resolve(row)
    },
    update(id, input) {
      const row = rows.get(id)
      if (row === undefined) return Promise.resolve(undefined)
      const updated: Metaverse = { ...row, ...input, updatedAt: new Date().toISOString() }
      rows.set(id, updated)
      return Promise.resolve(updated)
    },
    delete: (id) => Promise.resolve(rows.delete(id)),
  }
}

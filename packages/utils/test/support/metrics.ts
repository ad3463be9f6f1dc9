// Reads values out of a prom-client registry, the way a scrape would see them.
import type { Registry } from 'prom-client'

export type Labels = Readonly<Record<string, string | number>>

interface Sample {
  readonly labels: Labels
  readonly value: number
  readonly metricName?: string
}

/** Every sample of every metric, as `getMetricsAsJSON` gives them (histograms as _bucket/_sum/_count). */
export async function samples(registry: Registry): Promise<{ name: string; sample: Sample }[]> {
  const metrics = (await registry.getMetricsAsJSON()) as unknown as { name: string; values: Sample[] }[]
  return metrics.flatMap((metric) =>
    metric.values.map((sample) => ({ name: sample.metricName ?? metric.name, sample })),
  )
}

/** The value of `name` with exactly these labels (among others it may have); undefined if absent. */
export async function valueOf(registry: Registry, name: string, labels: Labels = {}): Promise<number | undefined> {
  const found = (await samples(registry)).find(
    (entry) =>
      entry.name === name && Object.entries(labels).every(([key, value]) => entry.sample.labels[key] === value),
  )
  return found?.sample.value
}

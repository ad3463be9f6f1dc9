// Load from its own process: a fixed rate of GETs to each target, recording when each request was
// sent, its status and its latency. Prints one JSON line with every sample when done.
// argv: durationMs perSecond url [url ...]
const [durationMs, perSecond, ...urls] = process.argv.slice(2)
const samples = urls.map(() => [])
const inFlight = new Set()
const started = performance.now()

const timer = setInterval(
  () => {
    const at = performance.now() - started
    if (at >= Number(durationMs)) return
    urls.forEach((url, target) => {
      const sent = performance.now()
      const request = fetch(url)
        .then(async (res) => {
          await res.arrayBuffer()
          samples[target].push([Math.round(at), res.status, +(performance.now() - sent).toFixed(2)])
        })
        .catch(() => samples[target].push([Math.round(at), 0, +(performance.now() - sent).toFixed(2)]))
        .finally(() => inFlight.delete(request))
      inFlight.add(request)
    })
  },
  1000 / Number(perSecond),
)

setTimeout(async () => {
  clearInterval(timer)
  // Requests still waiting on a dead Redis are part of the result: wait for them (up to 30 s).
  await Promise.race([Promise.all([...inFlight]), new Promise((r) => setTimeout(r, 30_000))])
  // Exit once the samples are out: idle keep-alive sockets and the 30 s guard would hold the process.
  process.stdout.write(`${JSON.stringify(samples)}\n`, () => process.exit(0))
}, Number(durationMs))

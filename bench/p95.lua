-- wrk report: latency percentiles (p95 included, which wrk's own --latency omits) and errors.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("p50 %.1f ms  p95 %.1f ms  p99 %.1f ms  max %.1f ms  requests %d  errors %d (connect %d, read %d, write %d, timeout %d, status %d)\n",
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.requests, e.connect + e.read + e.write + e.timeout + e.status, e.connect, e.read, e.write, e.timeout, e.status))
end

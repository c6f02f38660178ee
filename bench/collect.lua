-- wrk: trackers' records as CodeCarbon 3.3.2 posts them (POST /emissions), spread over the runs
-- given, each with its own timestamp so none is a retry of another. Arguments: RUN_IDS (comma
-- separated) TOKEN. Prints latency percentiles and the count of answers other than 201.
local threads = {}
setup = function(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

init = function(args)
  runs = {}
  for r in string.gmatch(args[1], "[^,]+") do table.insert(runs, r) end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["x-api-token"] = args[2]
  n = 0
  refused = 0
end

request = function()
  n = n + 1
  local run = runs[(n % #runs) + 1]
  local ts = string.format("2026-%02d-%02dT%02d:%02d:%02d.%06d+00:00", 1 + math.floor(n / 2678400) % 12,
    1 + math.floor(n / 86400) % 28, math.floor(n / 3600) % 24, math.floor(n / 60) % 60, n % 60, tid)
  local body = string.format('{"timestamp":"%s","run_id":"%s","duration":2,"emissions_sum":1.56e-06,' ..
    '"emissions_rate":7.8e-07,"cpu_power":29.9,"gpu_power":0.0,"ram_power":20.0,"cpu_energy":1.67e-05,' ..
    '"gpu_energy":0.0,"ram_energy":1.12e-05,"energy_consumed":2.79e-05,"cpu_utilization_percent":33.2,' ..
    '"gpu_utilization_percent":0,"ram_utilization_percent":3.9,"wue":0.0}', ts, run)
  return wrk.format(nil, "/emissions", nil, body)
end

response = function(status, headers, body)
  if status ~= 201 then refused = refused + 1 end
end

done = function(summary, latency, requests)
  local e = summary.errors
  local other = 0
  for _, t in ipairs(threads) do other = other + t:get("refused") end
  io.write(string.format("requests %d  seconds %.2f  p50 %.1f ms  p95 %.1f ms  p99 %.1f ms  max %.1f ms  not201 %d  socket_errors %d\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, other, e.connect + e.read + e.write + e.timeout))
end

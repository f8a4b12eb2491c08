-- wrk script of bench/web.py: POST bodies read from a file, one per line, each thread taking every Nth line (so a
-- user's codes stay in order on one thread); counts the answers holding the accept marker.
-- wrk ... -s wrk_bodies.lua URL -- BODIES_FILE THREADS MARKER "Header: value" ...
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local bodies = {}
local index = 0
accepted = 0
other = 0
local marker

function init(args)
  local nthreads = tonumber(args[2])
  marker = args[3]
  for i = 4, #args do
    local name, value = string.match(args[i], "^([^:]+):%s*(.*)$")
    wrk.headers[name] = value
  end
  local line_number = 0
  for line in io.lines(args[1]) do
    if line_number % nthreads == tid then
      bodies[#bodies + 1] = line
    end
    line_number = line_number + 1
  end
end

function request()
  index = index % #bodies + 1
  return wrk.format("POST", nil, nil, bodies[index])
end

function response(status, headers, body)
  if status == 200 and string.find(body, marker, 1, true) then
    accepted = accepted + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local a, o = 0, 0
  for _, thread in ipairs(threads) do
    a = a + thread:get("accepted")
    o = o + thread:get("other")
  end
  local e = summary.errors
  io.write(string.format("BENCH_REQUESTS %d\n", summary.requests))
  io.write(string.format("BENCH_SECONDS %f\n", summary.duration / 1e6))
  io.write(string.format("BENCH_ACCEPTED %d\nBENCH_OTHER %d\n", a, o))
  io.write(string.format("BENCH_ERRORS %d\n", e.connect + e.read + e.write + e.timeout + e.status))
  io.write(string.format("BENCH_P50_US %f\nBENCH_P99_US %f\n", latency:percentile(50), latency:percentile(99)))
end

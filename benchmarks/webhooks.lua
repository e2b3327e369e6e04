-- wrk script of benchmarks/webhook_ingest.py: POST pre-signed, distinct webhook bodies.
--
-- Environment:
--   BODIES        file with one JSON body per line; thread k of n sends lines k, k+n, k+2n, …
--   RATE          requests per second offered by all threads together; 0 = as fast as the
--                 connections allow (closed loop)
--   LOAD_SECONDS  no request is sent after this many seconds: wrk's -d should be a little
--                 longer, so every request sent is answered before wrk stops (an answer cut
--                 off by wrk's stop would make "stored rows == 2xx answers" unprovable)
--
-- Rate control is wrk2's idea done with wrk's delay() hook: each thread hands out send slots
-- every 1/rate seconds; a connection whose previous answer came back takes the next slot and
-- waits for it. A slot taken after its time is sent at once and counted as late, with the
-- largest lag: late sends mean the server did not keep up and latency is under-reported
-- (coordinated omission), so the figure is printed next to the latencies.
--
-- done() prints one line "WRK_RESULT {json}" with wrk's summary and latency percentiles (µs)
-- and the threads' own counters.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]]
local clock = ffi.new("bench_timespec")

local function now_ms()
    ffi.C.clock_gettime(1, clock) -- CLOCK_MONOTONIC
    return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

-- main state: one entry per thread, so done() can read their counters
local threads = {}

function setup(thread)
    thread:set("id", #threads)
    table.insert(threads, thread)
end

-- thread state
requests_list = {}
index = 1
sent, ok, failed, exhausted, late = 0, 0, 0, 0, 0
max_lag = 0
first_ms, last_ms, last_send_ms = 0, 0, 0
statuses = ""

function init(args)
    local thread_count = tonumber(os.getenv("THREADS") or "1")
    local line_number = 0
    for line in io.lines(os.getenv("BODIES")) do
        if line_number % thread_count == id then
            table.insert(requests_list, wrk.format(nil, nil, nil, line))
        end
        line_number = line_number + 1
    end
    local rate = tonumber(os.getenv("RATE") or "0")
    interval = rate > 0 and thread_count * 1000 / rate or 0
    start_ms = now_ms()
    next_slot = start_ms
    deadline = start_ms + tonumber(os.getenv("LOAD_SECONDS")) * 1000
    counts = {}
end

function delay()
    local now = now_ms()
    local slot = interval > 0 and next_slot or now
    if slot >= deadline then
        return 3600 * 1000 -- load window over: send nothing more, let answers land
    end
    next_slot = next_slot + interval
    local wait = slot - now
    if interval > 0 and wait < 0 then
        if -wait > 1 then
            late = late + 1
        end
        if -wait > max_lag then
            max_lag = -wait
        end
        wait = 0
    end
    return wait
end

function request()
    if index > #requests_list then
        exhausted = exhausted + 1 -- bodies ran out: a repeat is a duplicate delivery
        index = 1
    end
    local body = requests_list[index]
    index = index + 1
    sent = sent + 1
    last_send_ms = now_ms()
    if first_ms == 0 then
        first_ms = last_send_ms
    end
    return body
end

function response(status, headers, body)
    last_ms = now_ms()
    if status >= 200 and status < 300 then
        ok = ok + 1
    else
        failed = failed + 1
        counts[status] = (counts[status] or 0) + 1
        local parts = {}
        for code, count in pairs(counts) do
            table.insert(parts, string.format('"%d":%d', code, count))
        end
        statuses = table.concat(parts, ",")
    end
end

function done(summary, latency, requests)
    local totals = { sent = 0, ok = 0, failed = 0, exhausted = 0, late = 0 }
    local lag, first, last, last_send, codes = 0, nil, 0, 0, {}
    for _, thread in ipairs(threads) do
        for name, _ in pairs(totals) do
            totals[name] = totals[name] + thread:get(name)
        end
        lag = math.max(lag, thread:get("max_lag"))
        local f = thread:get("first_ms")
        if f > 0 and (first == nil or f < first) then
            first = f
        end
        last = math.max(last, thread:get("last_ms"))
        last_send = math.max(last_send, thread:get("last_send_ms"))
        local s = thread:get("statuses")
        if s ~= "" then
            table.insert(codes, s)
        end
    end
    local e = summary.errors
    io.write(string.format(
        'WRK_RESULT {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,' ..
        '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,' ..
        '"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f,"sent":%d,"ok":%d,' ..
        '"failed":%d,"exhausted":%d,"late":%d,"max_lag_ms":%.1f,"window_ms":%.1f,' ..
        '"send_span_ms":%.1f,' ..
        '"statuses":{%s}}\n',
        summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
        latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency:percentile(99.9), latency.max, latency.mean, totals.sent, totals.ok,
        totals.failed, totals.exhausted, totals.late, lag, last - (first or last),
        last_send - (first or last_send),
        table.concat(codes, ",")))
end

-- The bench's wrk script (bench/load.ts runs it). Two workloads:
--
--   wrk -t N -c N -s load.lua URL -- get PATH
--       GET PATH over and over.
--   wrk -t N -c N -s load.lua URL -- attach-detach GROUPS_FILE N
--       Attach a random group to its target domain, then detach it, over
--       and over. GROUPS_FILE holds one "groupId domainId" line per group.
--
-- Always one connection per thread (-t N -c N): a thread's Lua state cannot
-- tell its connections apart, but with one connection its requests are
-- strictly sequential, so "attach g, then detach g" holds per connection and
-- each request's start is known. Thread i owns the groups at lines i, i+N,
-- i+2N ... so no two connections touch the same group: every request is a
-- legitimate success, never an EBUSY the workload made up.
--
-- Every response's latency is recorded (CLOCK_MONOTONIC via LuaJIT's FFI,
-- from building the request, which wrk does right before writing it, to the
-- parsed response) by request kind, and printed at the end as one JSON line:
--   {"durationUs":..,"statuses":{"200":n,..},"noops":{"attach":n,..},
--    "errors":{...},"samplesUs":{"attach":[..],"detach":[..]}}

local ffi = require("ffi")
ffi.cdef[[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock, bench_timespec *ts);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("bench_timespec")
local function nowUs()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

local threads = {}

-- wrk runs setup(thread) and then that thread's init(args) before it creates
-- the next thread, so the thread count comes from the command line.
function setup(thread)
  thread:set("index", #threads)
  table.insert(threads, thread)
end

local mode
local path
local groups, domains = {}, {}
local current
local attaching = true
local kind, started
local KINDS = { "get", "attach", "detach" }
-- Read by done() through thread:get, so global. Flat tables only: wrk's
-- thread:get crashes copying a table that holds tables.
samples_get, samples_attach, samples_detach = {}, {}, {}
counts, noops = {}, {}

function init(args)
  mode = args[1]
  if mode == "get" then
    path = args[2]
  elseif mode == "attach-detach" then
    local nthreads = tonumber(args[3])
    local i = 0
    for line in io.lines(args[2]) do
      local g, d = line:match("^(%d+)%s+(%d+)$")
      if g then
        if i % nthreads == index then
          table.insert(groups, g)
          domains[g] = d
        end
        i = i + 1
      end
    end
    if #groups == 0 then error("thread " .. index .. " owns no group: more connections than groups?") end
    math.randomseed(os.time() * 1000 + index * 7919)
  else
    error("load.lua: unknown workload " .. tostring(mode))
  end
end

local jsonHeaders = { ["content-type"] = "application/json" }

local counted = false

function request()
  -- wrk calls request() once on thread 0's state right after its init, only
  -- to count how many requests one call returns. That call must not start a
  -- cycle (the thread's first real request would then be a detach of a
  -- group it never attached).
  if index == 0 and not counted then
    counted = true
    return wrk.format("GET", "/")
  end
  if mode == "get" then
    kind = "get"
    started = nowUs()
    return wrk.format("GET", path)
  end
  if attaching then current = groups[math.random(#groups)] end
  kind = attaching and "attach" or "detach"
  attaching = not attaching
  local req = wrk.format("POST", "/v1/groups/" .. current .. "/" .. kind, jsonHeaders, '{"domainId":' .. domains[current] .. "}")
  started = nowUs()
  return req
end

function response(status, _, body)
  local s = _G["samples_" .. kind]
  s[#s + 1] = math.floor(nowUs() - started + 0.5)
  counts[status] = (counts[status] or 0) + 1
  if status < 300 and body and body:find('"changed":false', 1, true) then
    noops[kind] = (noops[kind] or 0) + 1
  end
end

local function jsonCounts(t)
  local parts = {}
  for k, n in pairs(t) do parts[#parts + 1] = string.format('"%s":%d', tostring(k), n) end
  return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary)
  local allSamples, allCounts, allNoops = {}, {}, {}
  for _, t in ipairs(threads) do
    for _, k in ipairs(KINDS) do
      local list = t:get("samples_" .. k)
      if #list > 0 then
        local into = allSamples[k] or {}
        allSamples[k] = into
        for _, v in ipairs(list) do into[#into + 1] = v end
      end
    end
    for code, n in pairs(t:get("counts")) do allCounts[code] = (allCounts[code] or 0) + n end
    for k, n in pairs(t:get("noops")) do allNoops[k] = (allNoops[k] or 0) + n end
  end
  local kinds = {}
  for k, list in pairs(allSamples) do kinds[#kinds + 1] = string.format('"%s":[%s]', k, table.concat(list, ",")) end
  local e = summary.errors
  io.write(string.format(
    '{"durationUs":%d,"requests":%d,"statuses":%s,"noops":%s,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},"samplesUs":{%s}}\n',
    summary.duration, summary.requests, jsonCounts(allCounts), jsonCounts(allNoops),
    e.connect, e.read, e.write, e.timeout, table.concat(kinds, ",")))
end

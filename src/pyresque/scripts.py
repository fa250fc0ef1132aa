"""Server-side Lua scripts: each one is a single round trip that keeps a job inside Redis.

Key names are built inside the scripts from the namespace prefix, exactly as :mod:`pyresque.keys`
builds them (Resque is not a Redis Cluster protocol: its keys never shared a slot).
"""

from __future__ import annotations

# Finish the previous job (if any) and reserve the next one, in one call.
#
# ARGV: 1 prefix, 2 worker id, 3 run_at, 4 queue of the job to acknowledge ('' = none),
# 5 sha1 of that payload when it had been redelivered ('' = none), 6 failure record ('' = success),
# 7 '1' to count the failure in stat:failed, 8 '1' to reserve, 9 token of the reservation being
# acknowledged, 10 token for the new reservation, 11.. pairs (queue name, queue as JSON).
#
# The in-flight hash keeps the current reservation's token in its field '' (never a queue name). An
# acknowledgement applies only while that token is still there: a call retried after its reply was
# lost cannot count a job twice, nor acknowledge the next job in its place.
#
# Returns {} when no queue has a job, {'paused'} when pause-all-workers is set, else
# {'job', queue, payload, deliveries}. The job moves from its queue (or from the worker's landing
# list, where a blocking BLMOVE put it) into the worker's in-flight hash atomically, and
# worker:<id> is set in the same call, so resque-web sees the worker busy at once.
CYCLE = r"""
local p, wid = ARGV[1], ARGV[2]
local inflight = p .. 'inflight:' .. wid
if ARGV[4] ~= '' and (ARGV[9] == '' or redis.call('HGET', inflight, '') == ARGV[9]) then
  redis.call('HDEL', inflight, ARGV[4], '')
  redis.call('DEL', p .. 'worker:' .. wid)
  if ARGV[5] ~= '' then redis.call('HDEL', p .. 'redeliveries', ARGV[5]) end
  if ARGV[6] ~= '' then
    redis.call('RPUSH', p .. 'failed', ARGV[6])
    if ARGV[7] == '1' then
      redis.call('INCRBY', p .. 'stat:failed', 1)
      redis.call('INCRBY', p .. 'stat:failed:' .. wid, 1)
    end
  end
  redis.call('INCRBY', p .. 'stat:processed', 1)
  redis.call('INCRBY', p .. 'stat:processed:' .. wid, 1)
end
if ARGV[8] ~= '1' then return {} end
-- A call delayed in the network may run after its worker gave up on it and moved on: it must not
-- reserve over the worker's current reservation (whose token it does not know).
local current = redis.call('HGET', inflight, '')
if current and current ~= ARGV[9] and ARGV[10] ~= '' then return {} end
-- a job a blocking BLMOVE dropped in this worker's landing list (single-queue workers only)
local landed = redis.call('LPOP', p .. 'landing:' .. wid)
local pause = redis.call('GET', p .. 'pause-all-workers')
if pause and string.lower((string.gsub(pause, '^%s*(.-)%s*$', '%1'))) == 'true' then
  if landed then redis.call('LPUSH', p .. 'queue:' .. ARGV[11], landed) end
  return {'paused'}
end
local function take(q, qjson, payload)
  if ARGV[10] ~= '' then
    redis.call('HSET', inflight, q, payload, '', ARGV[10])
  else
    redis.call('HSET', inflight, q, payload)
  end
  redis.call('SADD', p .. 'inflight-workers', wid)
  local ok, decoded = pcall(cjson.decode, payload)
  if ok and type(decoded) == 'table' then
    redis.call('SET', p .. 'worker:' .. wid,
      '{"queue":' .. qjson .. ',"run_at":"' .. ARGV[3] .. '","payload":' .. payload .. '}')
  end
  local delivered = '0'
  if redis.call('EXISTS', p .. 'redeliveries') == 1 then  -- hash only when something crashed
    delivered = redis.call('HGET', p .. 'redeliveries', redis.sha1hex(payload)) or '0'
  end
  return {'job', q, payload, delivered}
end
if landed then return take(ARGV[11], ARGV[12], landed) end
for i = 11, #ARGV, 2 do
  local payload = redis.call('LPOP', p .. 'queue:' .. ARGV[i])
  if payload then return take(ARGV[i], ARGV[i + 1], payload) end
end
return {}
"""

# Put a worker's in-flight job back at the front of its queue (or fail it once it has killed its
# process too often). Compare-and-move: nothing happens unless the in-flight entry still holds the
# expected payload, so two recoverers racing over one dead worker requeue it once.
#
# ARGV: 1 prefix, 2 worker id, 3 queue, 4 expected payload, 5 '1' to count a delivery,
# 6 max deliveries, 7 failure record to push when the count reaches the maximum.
# Returns 'requeued', 'failed' or 'gone'.
REQUEUE = r"""
local p, wid, q = ARGV[1], ARGV[2], ARGV[3]
local inflight = p .. 'inflight:' .. wid
local payload = redis.call('HGET', inflight, q)
if not payload or payload ~= ARGV[4] then return 'gone' end
redis.call('HDEL', inflight, q, '')
redis.call('DEL', p .. 'worker:' .. wid)
if ARGV[5] == '1' then
  local sha = redis.sha1hex(payload)
  local n = redis.call('HINCRBY', p .. 'redeliveries', sha, 1)
  if n >= tonumber(ARGV[6]) then
    redis.call('HDEL', p .. 'redeliveries', sha)
    redis.call('RPUSH', p .. 'failed', ARGV[7])
    redis.call('INCRBY', p .. 'stat:processed', 1)
    return 'failed'
  end
end
redis.call('SADD', p .. 'queues', q)
redis.call('LPUSH', p .. 'queue:' .. q, payload)
return 'requeued'
"""

# Remove one failure record by index without disturbing concurrent pushes (Resque's way: overwrite
# the entry with a unique marker, then LREM that marker). ARGV: 1 failed key, 2 index, 3 marker.
REMOVE_FAILURE = r"""
local ok = pcall(redis.call, 'LSET', ARGV[1], ARGV[2], ARGV[3])
if not ok then return 0 end
return redis.call('LREM', ARGV[1], 1, ARGV[3])
"""

# Put back what a worker's landing list holds, at the front of its queue, oldest first.
# ARGV: 1 landing key, 2 queue key. Returns how many.
RETURN_LANDED = r"""
local n = 0
while redis.call('LMOVE', ARGV[1], ARGV[2], 'RIGHT', 'LEFT') do n = n + 1 end
return n
"""

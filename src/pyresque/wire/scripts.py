"""Server-side Lua scripts: each one is a single round trip that keeps a job inside Redis.

Every key a script touches is passed in ``KEYS``, built by :mod:`pyresque.wire.keys` (Redis requires it
of scripts, and proxies and Redis Cluster route by it); ``ARGV`` carries only values. The order of
``CYCLE``'s ``KEYS`` and ``ARGV`` is declared by name in :mod:`pyresque.wire.layout`, from which its
Lua indices and header come; the other scripts' in the typed requests of
:mod:`pyresque.store.cycle`. Under one hash-tagged namespace (``{resque}``) every key lands in one slot, so the
scripts also run on a Redis Cluster.

Redelivery counts (``redeliveries``: sha1 of a payload -> ``"<count> <epoch>"``) carry the time of
the last counted death, so that an entry nobody clears (a job finished by a Ruby worker, a count
that never reached the limit) goes stale and is swept by :data:`PRUNE_REDELIVERIES`.
"""

from __future__ import annotations

from pyresque.wire.layout import CYCLE as CYCLE_LAYOUT

# ``utc_text(seconds)``: epoch seconds as ``2026-11-28T06:57:33Z``, the text of
# :func:`pyresque.wire.protocol.run_at_time` (days to a civil date, as in Howard Hinnant's
# ``civil_from_days``; Lua 5.1 numbers are doubles, exact for these integers).
UTC_TEXT = r"""
local function utc_text(seconds)
  local days = math.floor(seconds / 86400)
  local second = seconds - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local day = doy - math.floor((153 * mp + 2) / 5) + 1
  local month = mp < 10 and mp + 3 or mp - 9
  local year = yoe + era * 400 + (month <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02dT%02d:%02d:%02dZ', year, month, day,
    math.floor(second / 3600), math.floor(second % 3600 / 60), second % 60)
end
"""

# Finish the previous job (if any) and reserve the next one, in one call.
#
# Its KEYS and ARGV are declared once, by name, in pyresque.wire.layout.CYCLE: the Lua below
# says KEYS[$name] / ARGV[$name], replaced by the declared index when the text is rendered, and
# the script starts with a header comment generated from the declaration (print CYCLE to read
# it). pyresque.store.cycle packs a call from the same declaration.
#
# Only what a call needs is passed: the server turns every argument into a Lua string, and a
# success (most calls) needs no failure keys, no failure record, no key to delete.
#
# The in-flight hash keeps the current reservation's token in its field '' (never a queue name). An
# acknowledgement applies only while that token is still there: a call retried after its reply was
# lost cannot count a job twice, nor acknowledge the next job in its place.
#
# A 'held' reply means the in-flight hash holds a reservation whose reply was lost: the worker
# puts it back (pyresque.worker.reserving). The reply is one string, not a table (one bulk reply
# costs the server a fraction of what a table of four does). The job moves from its queue (or
# from the worker's landing list, where a blocking BLMOVE put it) into the worker's in-flight
# hash atomically, and worker:<id> is set in the same call, so resque-web sees the worker busy at
# once. The busy record embeds the payload as it is when it looks like a JSON object; the worker parses the payload
# itself and fails one that is not JSON, which clears the record in its next call.
#
# The worker is listed in inflight-workers (recovery's index of who may hold a job) by the call
# that reserves into an empty in-flight hash. A call that acknowledges by token and reserves again
# skips the SADD: the hash has held that token since the call that listed the worker, and the
# index loses a worker only while its hash and landing list are empty (FORGET_OWNER, atomically).
#
# Commands per job (a success acknowledged by token and the next job reserved from the first
# queue): HGET (token), INCRBY x2 (stats), EXISTS (pause-all-workers or redeliveries: a GET of the
# one and an HGET of the other follow only when either exists), LPOP (queue), HSET (in-flight: the
# new job and its token over the old ones), SET (busy record): 7, and an LPOP of the landing list
# when the worker may have something there (after a blocking move; once a second). Per-job metrics
# are not written here: the worker adds them up and writes them about once a second
# (pyresque.wire.jobmetrics).
#
# Each redis.call costs several times the command it runs (its arguments become a command, its
# reply a Lua value), and so does each argument of the call itself (a Lua string in KEYS or
# ARGV): fewer of either is what makes a script cheaper for Redis. Every increment is given as
# the string '1', never the number 1: Redis turns a Lua number argument into text with
# snprintf("%.17g"), which costs more than the INCRBY itself.
CYCLE_TEMPLATE = r"""
local inflight = KEYS[$inflight]
local failing, counted, deletes = false, false, false
if ARGV[$extras] ~= '' then
  counted = string.find(ARGV[$extras], 'f', 1, true)
  failing = counted or string.find(ARGV[$extras], 'u', 1, true)
  deletes = string.find(ARGV[$extras], 'd', 1, true)
end
-- KEYS[$queue..last] are the queues; the optional tails' keys follow them
local last = #KEYS - (failing and $failure_keys or 0) - (deletes and $forget_keys or 0)
-- the token the in-flight hash holds (false: none), once read; the acknowledged job's queue;
-- whether the worker is known to be listed in inflight-workers
local current, known, acked, listed = false, false, nil, false
if ARGV[$acked_queue] ~= '' then
  if ARGV[$acked_token] ~= '' then current, known = redis.call('HGET', inflight, ''), true end
  if ARGV[$acked_token] == '' or current == ARGV[$acked_token] then
    acked, current, known, listed = ARGV[$acked_queue], false, true, ARGV[$acked_token] ~= ''
    if ARGV[$acked_sha] ~= '' then redis.call('HDEL', KEYS[$redeliveries], ARGV[$acked_sha]) end
    if failing then
      redis.call('RPUSH', KEYS[last + $failed],
        ARGV[$args + $per_queue_args * (last - $keys) + $failure_record])
      if counted then
        redis.call('INCRBY', KEYS[last + $failed_count], '1')
        redis.call('INCRBY', KEYS[last + $worker_failed_count], '1')
      end
    end
    redis.call('INCRBY', KEYS[$processed], '1')
    redis.call('INCRBY', KEYS[$worker_processed], '1')
    if deletes then
      redis.call('DEL', KEYS[last + (failing and $failure_keys or 0) + $forget])
    end
  end
end
-- The job to reserve, if any; with none, the call returns `reply`: 'held', 'paused', or false
-- (a nil reply). Plain blocks, no inner functions: a closure and its upvalues are allocated afresh
-- by every call.
local q, qjson, payload, reply, flagged = nil, nil, false, false, false
if ARGV[$reserve_from] ~= '0' then
  -- A call delayed in the network may run after its worker gave up on it and moved on: it must
  -- not reserve over the worker's current reservation (whose token it does not know).
  if not known then current = redis.call('HGET', inflight, '') end
  if current and current ~= ARGV[$acked_token] and ARGV[$token] ~= '' then
    reply = 'held'
  else
    -- a job a blocking BLMOVE dropped in this worker's landing list (single-queue workers only)
    local landed = ARGV[$reserve_from] == '1' and redis.call('LPOP', KEYS[$landing])
    -- pause-all-workers and redeliveries are both absent almost always: one EXISTS says so
    flagged = redis.call('EXISTS', KEYS[$pause_all], KEYS[$redeliveries]) > 0
    local pause = flagged and redis.call('GET', KEYS[$pause_all])
    if pause and string.lower((string.gsub(pause, '^%s*(.-)%s*$', '%1'))) == 'true' then
      if landed then redis.call('LPUSH', last >= $queue and KEYS[$queue] or KEYS[$landing], landed) end
      reply = 'paused'
    elseif landed then
      if last >= $queue then
        q, qjson, payload = ARGV[$queue_name], ARGV[$queue_json], landed
      else  -- reserving from no queue: the job stays where it landed
        redis.call('LPUSH', KEYS[$landing], landed)
      end
    else
      for i = $queue, last do
        payload = redis.call('LPOP', KEYS[i])
        if payload then
          local at = $queue_name + $per_queue_args * (i - $queue)
          q, qjson = ARGV[at], ARGV[at + ($queue_json - $queue_name)]
          break
        end
      end
    end
  end
end
if not payload then
  -- the acknowledged job leaves the in-flight hash and the busy record
  if acked then
    redis.call('HDEL', inflight, acked, '')
    redis.call('DEL', KEYS[$busy])
  end
  return reply
end
-- The reserved job and its token overwrite the acknowledged job's in the in-flight hash, and its
-- busy record the acknowledged one's (one command each, not two).
if ARGV[$token] ~= '' then
  redis.call('HSET', inflight, q, payload, '', ARGV[$token])
  if acked and acked ~= q then redis.call('HDEL', inflight, acked) end
else
  redis.call('HSET', inflight, q, payload)
  if acked then
    if acked ~= q then redis.call('HDEL', inflight, acked, '') else redis.call('HDEL', inflight, '') end
  end
end
if not listed then redis.call('SADD', KEYS[$inflight_workers], ARGV[$worker_id]) end
if string.byte(payload, 1) == 123 and string.byte(payload, -1) == 125 then  -- '{' ... '}'
  local run_at = ARGV[$run_at]
  if run_at == '' then run_at = utc_text(tonumber(redis.call('TIME')[1])) end
  redis.call('SET', KEYS[$busy],
    '{"queue":' .. qjson .. ',"run_at":"' .. run_at .. '","payload":' .. payload .. '}')
elseif acked then
  redis.call('DEL', KEYS[$busy])
end
local delivered = '0'
if flagged then  -- the redeliveries hash exists only when something crashed
  local entry = redis.call('HGET', KEYS[$redeliveries], redis.sha1hex(payload))
  if entry then delivered = string.match(entry, '^%d+') or '0' end
end
return delivered .. ' ' .. #q .. ' ' .. q .. payload
"""
CYCLE = CYCLE_LAYOUT.render(UTC_TEXT + CYCLE_TEMPLATE)

# Put a worker's in-flight job back at the front of its queue (or fail it once it has killed its
# process too often). Compare-and-move: nothing happens unless the in-flight entry still holds the
# expected payload, so two recoverers racing over one dead worker requeue it once.
#
# KEYS: 1 inflight:<id>, 2 worker:<id>, 3 redeliveries, 4 failed, 5 stat:processed, 6 queues,
# 7 queue:<q>. ARGV: 1 queue, 2 expected payload, 3 '1' to count a delivery, 4 max deliveries,
# 5 failure record to push when the count reaches the maximum, 6 now (epoch seconds).
# Returns 'requeued', 'failed' or 'gone'.
REQUEUE = r"""
local inflight, q = KEYS[1], ARGV[1]
local payload = redis.call('HGET', inflight, q)
if not payload or payload ~= ARGV[2] then return 'gone' end
redis.call('HDEL', inflight, q, '')
redis.call('DEL', KEYS[2])
if ARGV[3] == '1' then
  local sha = redis.sha1hex(payload)
  local entry = redis.call('HGET', KEYS[3], sha)
  local n = (entry and tonumber(string.match(entry, '^%d+')) or 0) + 1
  if n >= tonumber(ARGV[4]) then
    redis.call('HDEL', KEYS[3], sha)
    redis.call('RPUSH', KEYS[4], ARGV[5])
    redis.call('INCRBY', KEYS[5], '1')
    return 'failed'
  end
  redis.call('HSET', KEYS[3], sha, n .. ' ' .. ARGV[6])
end
redis.call('SADD', KEYS[6], q)
redis.call('LPUSH', KEYS[7], payload)
return 'requeued'
"""

# Drop a reservation token left alone in a worker's in-flight hash (no job beside it, so nothing to
# put back), while it is still that token and still alone: every CYCLE of the worker would refuse
# to reserve over it. KEYS: 1 inflight:<id>. ARGV: 1 the token. Returns 1 if dropped, else 0.
FORGET_TOKEN = r"""
if redis.call('HLEN', KEYS[1]) == 1 and redis.call('HGET', KEYS[1], '') == ARGV[1] then
  return redis.call('HDEL', KEYS[1], '')
end
return 0
"""

# Drop a worker from inflight-workers while its in-flight hash and landing list are empty, in one
# step: a CYCLE that acknowledges by token skips listing its worker again (the worker is listed
# as long as its hash holds a token), so the index must never lose a worker that holds one.
# KEYS: 1 inflight-workers, 2 inflight:<id>, 3 landing:<id>. ARGV: 1 worker id. Returns 1 if
# dropped, else 0.
FORGET_OWNER = r"""
if redis.call('EXISTS', KEYS[2], KEYS[3]) > 0 then return 0 end
return redis.call('SREM', KEYS[1], ARGV[1])
"""

# Forget redelivery counts whose last counted death is older than a cut-off. An entry without a
# time (written by an older version) is given the current one, so it ages from now.
# KEYS: 1 redeliveries. ARGV: 1 now, 2 cut-off (epoch seconds). Returns how many were removed.
PRUNE_REDELIVERIES = r"""
local entries = redis.call('HGETALL', KEYS[1])
local removed = 0
for i = 1, #entries, 2 do
  local count, at = string.match(entries[i + 1], '^(%d+) (%d+)$')
  if not at then
    redis.call('HSET', KEYS[1], entries[i], (string.match(entries[i + 1], '^%d+') or '0') .. ' ' .. ARGV[1])
  elseif tonumber(at) < tonumber(ARGV[2]) then
    redis.call('HDEL', KEYS[1], entries[i])
    removed = removed + 1
  end
end
return removed
"""

# Acknowledge a failed job by scheduling its retry, or end it as a failure once its attempts are
# used up: one call, so the job is never both in flight and delayed, nor lost in between. Applies
# only while the worker's reservation token is still the one given, and while the attempt counter
# still holds the count the worker read (a concurrent retry of an identical job changes it: the
# worker reads again). KEYS: 1 inflight:<id>, 2 worker:<id>, 3 stat:processed,
# 4 stat:processed:<id>, 5 stat:failed, 6 stat:failed:<id>, 7 the attempt counter, 8 failed,
# 9 delayed:<ts>, 10 timestamps:<item>, 11 delayed_queue_schedule. ARGV: 1 queue, 2 token, 3 the
# count read ('' when none), 4 '1' to retry (else: fail), 5 delayed item, 6 timestamp,
# 7 scheduler wake-up channel, 8 counter TTL, 9 failure record.
# Returns 'retried', 'failed', 'stale' (the reservation is no longer ours) or 'changed'.
RETRY = r"""
if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], '') ~= ARGV[2] then return 'stale' end
if (redis.call('GET', KEYS[7]) or '') ~= ARGV[3] then return 'changed' end
redis.call('HDEL', KEYS[1], ARGV[1], '')
redis.call('DEL', KEYS[2])
redis.call('INCRBY', KEYS[3], '1')
redis.call('INCRBY', KEYS[4], '1')
redis.call('INCRBY', KEYS[5], '1')
redis.call('INCRBY', KEYS[6], '1')
if ARGV[4] == '1' then
  redis.call('INCR', KEYS[7])
  redis.call('EXPIRE', KEYS[7], ARGV[8])
  redis.call('RPUSH', KEYS[9], ARGV[5])
  redis.call('SADD', KEYS[10], 'delayed:' .. ARGV[6])
  redis.call('ZADD', KEYS[11], ARGV[6], ARGV[6])
  redis.call('PUBLISH', ARGV[7], ARGV[6])
  return 'retried'
end
redis.call('DEL', KEYS[7])
redis.call('RPUSH', KEYS[8], ARGV[9])
return 'failed'
"""

# Remove one failure record by index without disturbing concurrent pushes (Resque's way: overwrite
# the entry with a unique marker, then LREM that marker). KEYS: 1 failed. ARGV: 1 index, 2 marker.
REMOVE_FAILURE = r"""
local ok = pcall(redis.call, 'LSET', KEYS[1], ARGV[1], ARGV[2])
if not ok then return 0 end
return redis.call('LREM', KEYS[1], 1, ARGV[2])
"""

# Retry one failure record: mark it retried in place and push its payload back to its queue, only
# if the record at that index is still the one the caller read (compare-and-set), so a concurrent
# removal or retry is never overwritten. KEYS: 1 failed, 2 queues, 3 queue:<q>. ARGV: 1 index,
# 2 the record as read, 3 the record marked retried, 4 payload, 5 queue name, 6 wake-up channel.
# Returns 1, or 0 when the record changed meanwhile.
RETRY_FAILURE = r"""
if redis.call('LINDEX', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('LSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[5])
redis.call('RPUSH', KEYS[3], ARGV[4])
redis.call('PUBLISH', ARGV[6], ARGV[5])
return 1
"""

# Enqueue as Resque does (SADD queues, RPUSH queue:<q>), then publish the wake-up, in one call (a
# cluster pipeline cannot carry a PUBLISH). KEYS: 1 queues, 2 queue:<q>. ARGV: 1 queue name,
# 2 payload, 3 wake-up channel.
PUSH = r"""
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[1])
return 1
"""

# Enqueue many jobs in one call. KEYS: 1 queues, 2.. queue:<q> of each job, in order. ARGV: 1 the
# wake-up channel, then per job its queue name and payload. Each queue is added and woken once.
PUSH_MANY = r"""
local woken = {}
for i = 2, #KEYS do
  local q = ARGV[2 * i - 2]
  redis.call('RPUSH', KEYS[i], ARGV[2 * i - 1])
  if not woken[q] then
    woken[q] = true
    redis.call('SADD', KEYS[1], q)
  end
end
for q, _ in pairs(woken) do redis.call('PUBLISH', ARGV[1], q) end
return #KEYS - 1
"""

# Put back what a worker's landing list holds, at the front of its queue, oldest first.
# KEYS: 1 landing:<id>, 2 queue:<q>. Returns how many.
RETURN_LANDED = r"""
local n = 0
while redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT') do n = n + 1 end
return n
"""


# Stamp workers' heartbeats and list them in ``workers`` again (a no-op when they are there: a live
# worker a prune took for dead registers itself again). A script so that it runs on a full Redis
# too (see below): an expired heartbeat gets a live worker pruned, and its job run twice.
# KEYS: 1 workers:heartbeat, 2 workers. ARGV: 1 the stamp, 2.. worker ids.
HEARTBEAT = r"""
for i = 2, #ARGV do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[1])
  redis.call('SADD', KEYS[2], ARGV[i])
end
"""


# --- a full Redis ---------------------------------------------------------------------------------
#
# With maxmemory reached (noeviction) Redis refuses a script's first command that may grow memory
# (INCRBY, HSET, SET, RPUSH: the acknowledgement's counters, the reservation's in-flight entry)
# unless a write that may not grow memory ran before it in the same script, or the script declares
# ``allow-oom`` (Redis 7's shebang flags). Taking a job frees memory (it leaves its queue) and a
# worker that cannot finish one never takes the next, so the job scripts run in a form that a full
# Redis accepts whenever the plain one is refused: nothing ran before the refusal but reads, so
# running the other form is safe.
ALLOW_OOM_FLAGS = "#!lua flags=allow-oom\n"
# Redis 6 has no flags and cannot parse a shebang; its rule is "refuse only the first write": a
# deletion of a key nobody writes (in the first key's hash slot) is that first write.
_FIRST_WRITE = "redis.call('DEL', KEYS[1] .. ':pyresque-full-redis')\n"


def when_full(text: str, *, flags: bool) -> str:
    """``text`` in the form a full Redis runs: with Redis 7's ``allow-oom`` flag (``flags``), or
    for a server without script flags (Redis 6), opened by a deletion that makes every later write
    of the script allowed."""
    return ALLOW_OOM_FLAGS + text if flags else _FIRST_WRITE + text

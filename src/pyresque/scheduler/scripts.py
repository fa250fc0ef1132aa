"""The Lua scripts of the scheduler: resque-scheduler's master lock, and the batch move.

The two lock scripts are resque-scheduler 5.0's texts byte for byte (the timeout is baked into
the text, as Ruby does it), so their SHA1s are Ruby's and both schedulers share one script cache
entry: ``8f4a4e42…`` / ``8d4e4994…`` for the default 180 s.
"""

from __future__ import annotations


def acquire_lock_script(timeout: int) -> str:
    """SETNX the lock and give it a TTL: 1 if this caller now holds it."""
    return (
        "if redis.call('SETNX', KEYS[1], ARGV[1]) == 1\n"
        "then\n"
        f"  redis.call('EXPIRE', KEYS[1], {timeout})\n"
        "  return 1\n"
        "else\n"
        "  return 0\n"
        "end\n"
    )


def refresh_lock_script(timeout: int) -> str:
    """If the lock holds ARGV[1], extend its TTL: 1 if this caller still holds it."""
    return (
        "if redis.call('GET', KEYS[1]) == ARGV[1]\n"
        "then\n"
        f"  redis.call('EXPIRE', KEYS[1], {timeout})\n"
        "\n"
        "  if redis.call('GET', KEYS[1]) == ARGV[1]\n"
        "  then\n"
        "    return 1\n"
        "  end\n"
        "end\n"
        "\n"
        "return 0\n"
    )


# Delete the lock only if this caller holds it: resque-scheduler checks, then DELs in a second
# command; one script cannot delete a lock that another scheduler took in between.
RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# Move the first n items of one delayed:<ts> list to their queues, in one atomic step.
#
# KEYS[1] delayed:<ts>   KEYS[2] delayed_queue_schedule   KEYS[3] queues
# KEYS[3+i] the list item i goes to (queue:<q>, or the failed list for an unreadable item)
# KEYS[3+n+i] timestamps:<item i>
# ARGV[1] ts   ARGV[2] the wake-up channel   ARGV[3] n
# ARGV[3+3(i-1)+1..3] item i as read, what to push, the queue name ("" for none)
#
# The script first checks that the list still starts with the items the caller read (another
# client may have removed one since): if not it changes nothing and returns -1, and the caller
# reads again. So an item is either still delayed or queued, never both and never neither, and
# a scheduler killed at any point leaves Redis in one of those two states.
MOVE_BATCH = """
local function is_type(key, wanted)
  local t = redis.call('TYPE', key).ok
  return t == wanted or t == 'none'
end
local n = tonumber(ARGV[3])
if n > 0 then
  local head = redis.call('LRANGE', KEYS[1], 0, n - 1)
  if #head ~= n then return -1 end
  for i = 1, n do
    if head[i] ~= ARGV[3 + 3 * (i - 1) + 1] then return -1 end
  end
  -- Redis does not undo a script's writes when a later command fails: check every key's type
  -- first, so that a refused batch changes nothing (never queued and still delayed).
  if not is_type(KEYS[3], 'set') then return redis.error_reply('WRONGTYPE ' .. KEYS[3]) end
  for i = 1, n do
    if not is_type(KEYS[3 + i], 'list') then
      return redis.error_reply('WRONGTYPE ' .. KEYS[3 + i] .. ' is not a list')
    end
    if not is_type(KEYS[3 + n + i], 'set') then
      return redis.error_reply('WRONGTYPE ' .. KEYS[3 + n + i] .. ' is not a set')
    end
  end
  local member = 'delayed:' .. ARGV[1]
  local woken = {}
  for i = 1, n do
    local base = 3 + 3 * (i - 1)
    local queue = ARGV[base + 3]
    redis.call('SREM', KEYS[3 + n + i], member)
    if queue ~= '' then redis.call('SADD', KEYS[3], queue) end
    redis.call('RPUSH', KEYS[3 + i], ARGV[base + 2])
    if queue ~= '' and not woken[queue] then
      woken[queue] = true
      redis.call('PUBLISH', ARGV[2], queue)
    end
  end
  redis.call('LTRIM', KEYS[1], n, -1)
end
if redis.call('LLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return n
"""

# Delay one item (Ruby's delayed_push: RPUSH, SADD, ZADD) and wake sleeping schedulers; one call,
# so that it also runs on a cluster, where a pipeline cannot carry a PUBLISH.
# KEYS[1] delayed:<ts>  KEYS[2] timestamps:<item>  KEYS[3] delayed_queue_schedule
# ARGV[1] item  ARGV[2] ts  ARGV[3] the scheduler wake-up channel
DELAY = """
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], 'delayed:' .. ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[2])
return 1
"""

# A recurring job's fire: the push as Resque.enqueue does it (none when ARGV[1] is ""), then
# resque-scheduler's last_enqueued_at record, written even when nothing could be pushed.
# KEYS[1] queues  KEYS[2] queue:<q>  KEYS[3] delayed:last_enqueued_at
# ARGV[1] queue  ARGV[2] payload  ARGV[3] schedule name  ARGV[4] time text  ARGV[5] wake-up channel
FIRE = """
if ARGV[1] ~= '' then
  redis.call('SADD', KEYS[1], ARGV[1])
  redis.call('RPUSH', KEYS[2], ARGV[2])
end
redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
if ARGV[1] ~= '' then redis.call('PUBLISH', ARGV[5], ARGV[1]) end
return 1
"""

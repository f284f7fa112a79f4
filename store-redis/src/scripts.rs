//! The Lua scripts that make each compare-and-set one atomic step on the server.
//!
//! The store shares one multiplexed connection between all tasks, so it cannot
//! use WATCH/MULTI (a WATCH would apply to every task's commands). `redis::Script`
//! sends EVALSHA and loads the script when the server does not know it yet.
//!
//! A session record is a hash of three fields: `version` (the store version,
//! decimal), `session` (the session JSON with its schema version) and `commit`
//! (the token of the write that stored it). The token lets a script recognise a
//! write retried after a lost reply as already done. A key of another type, or a hash whose
//! `version` is not a number, counts as version 0 and is replaced by a save at 0.
//!
//! A transcript is a sorted set of event JSON scored by sequence number.

use std::sync::LazyLock;

use redis::Script;

/// Reads the stored version of the session hash `KEYS[1]` into `stored`,
/// deleting a key of another type.
const READ_VERSION: &str = r"
local stored = 0
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'hash' then
  stored = tonumber(redis.call('HGET', KEYS[1], 'version')) or 0
elseif kind ~= 'none' then
  redis.call('DEL', KEYS[1])
end
";

/// Defines `append(key, first, max_events)`: adds the `ARGV[first..]` pairs of
/// (sequence number, event JSON) to the transcript `key`, replacing an event
/// stored under the same number, and drops the oldest beyond `max_events`.
const APPEND_FUNCTION: &str = r"
local function append(key, first, max_events)
  for i = first, #ARGV, 2 do
    redis.call('ZREMRANGEBYSCORE', key, ARGV[i], ARGV[i])
    redis.call('ZADD', key, ARGV[i], ARGV[i + 1])
  end
  redis.call('ZREMRANGEBYRANK', key, 0, -(tonumber(max_events) + 1))
end
";

/// Stores a session if its version is `ARGV[1]` and returns `{1, new version}`,
/// or `{0, stored version}` on a conflict.
///
/// KEYS: session, transcript. ARGV: expected version, session JSON, commit
/// token, TTL in ms, max events, channel, message ('' publishes nothing), then
/// (sequence number, event JSON) pairs. Both keys get the TTL; the events are
/// appended and the message published only when the session is stored.
static COMMIT_TURN_SOURCE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{READ_VERSION}{APPEND_FUNCTION}{}",
        r"
local expected = tonumber(ARGV[1])
if stored == expected + 1 and redis.call('HGET', KEYS[1], 'commit') == ARGV[3] then
  return {1, stored}
end
if stored ~= expected then
  return {0, stored}
end
local version = stored + 1
redis.call('HSET', KEYS[1], 'version', version, 'session', ARGV[2], 'commit', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if #ARGV >= 8 then
  append(KEYS[2], 8, ARGV[5])
end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
if ARGV[7] ~= '' then
  redis.call('PUBLISH', ARGV[6], ARGV[7])
end
return {1, version}
"
    )
});

/// Appends events to a transcript and publishes the message when there are
/// events, and sets the transcript's TTL.
///
/// KEYS: transcript. ARGV: TTL in ms, max events, channel, message, then
/// (sequence number, event JSON) pairs.
static APPEND_EVENTS_SOURCE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{APPEND_FUNCTION}{}",
        r"
if #ARGV >= 5 then
  append(KEYS[1], 5, ARGV[2])
  redis.call('PUBLISH', ARGV[3], ARGV[4])
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"
    )
});

/// Takes a lease: returns '' when `KEYS[1]` was free or already held with this
/// token (a retried call), else the holder's token. It is `SET key token NX PX
/// ttl` made idempotent for a call retried after a lost reply, and returns the
/// holder for the log in the same round trip.
///
/// ARGV: token, TTL in ms.
const ACQUIRE_LEASE_SOURCE: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ''
end
return holder
";

/// Extends a lease held with token `ARGV[1]` to `ARGV[2]` ms; returns 1, or 0
/// when the lease is no longer held with that token.
const RENEW_LEASE_SOURCE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Deletes a lease held with token `ARGV[1]`; returns 1, or 0 when it is no
/// longer held with that token.
const RELEASE_LEASE_SOURCE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Defines `remove_matching(key, prefix)`: removes the entries of the list `key`
/// that start with `prefix` and returns how many it removed.
const REMOVE_MATCHING_FUNCTION: &str = r"
local function remove_matching(key, prefix)
  local removed = 0
  for _, entry in ipairs(redis.call('LRANGE', key, 0, -1)) do
    if string.sub(entry, 1, #prefix) == prefix then
      removed = removed + redis.call('LREM', key, 0, entry)
    end
  end
  return removed
end
";

/// Adds an unrecognised message to the head of the list `KEYS[1]`, replacing
/// the entry of the same message, and keeps the newest `ARGV[3]`.
///
/// ARGV: the entry prefix that identifies the message, the entry, the maximum length.
static RECORD_UNRECOGNISED_SOURCE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{REMOVE_MATCHING_FUNCTION}{}",
        r"
remove_matching(KEYS[1], ARGV[1])
redis.call('LPUSH', KEYS[1], ARGV[2])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[3]) - 1)
return 1
"
    )
});

/// Removes the entries of the list `KEYS[1]` that start with `ARGV[1]`; returns how many.
static DISMISS_UNRECOGNISED_SOURCE: LazyLock<String> =
    LazyLock::new(|| format!("{REMOVE_MATCHING_FUNCTION}{}", "\nreturn remove_matching(KEYS[1], ARGV[1])\n"));

static COMMIT_TURN: LazyLock<Script> = LazyLock::new(|| Script::new(&COMMIT_TURN_SOURCE));
static APPEND_EVENTS: LazyLock<Script> = LazyLock::new(|| Script::new(&APPEND_EVENTS_SOURCE));
static ACQUIRE_LEASE: LazyLock<Script> = LazyLock::new(|| Script::new(ACQUIRE_LEASE_SOURCE));
static RENEW_LEASE: LazyLock<Script> = LazyLock::new(|| Script::new(RENEW_LEASE_SOURCE));
static RELEASE_LEASE: LazyLock<Script> = LazyLock::new(|| Script::new(RELEASE_LEASE_SOURCE));

static RECORD_UNRECOGNISED: LazyLock<Script> = LazyLock::new(|| Script::new(&RECORD_UNRECOGNISED_SOURCE));
static DISMISS_UNRECOGNISED: LazyLock<Script> = LazyLock::new(|| Script::new(&DISMISS_UNRECOGNISED_SOURCE));

pub(crate) fn record_unrecognised() -> &'static Script {
    &RECORD_UNRECOGNISED
}

pub(crate) fn dismiss_unrecognised() -> &'static Script {
    &DISMISS_UNRECOGNISED
}

pub(crate) fn commit_turn() -> &'static Script {
    &COMMIT_TURN
}

pub(crate) fn append_events() -> &'static Script {
    &APPEND_EVENTS
}

pub(crate) fn acquire_lease() -> &'static Script {
    &ACQUIRE_LEASE
}

pub(crate) fn renew_lease() -> &'static Script {
    &RENEW_LEASE
}

pub(crate) fn release_lease() -> &'static Script {
    &RELEASE_LEASE
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Returns the first argument of every `redis.call` in `source` that is
    /// not a PUBLISH (whose first argument is a channel, not a key).
    fn key_arguments(source: &str) -> Vec<&str> {
        let mut keys = Vec::new();
        for call in source.split("redis.call(").skip(1) {
            let mut arguments = call.split([',', ')']).map(str::trim);
            let command = arguments.next().unwrap_or_default();
            if command != "'PUBLISH'" {
                keys.push(arguments.next().unwrap_or_default());
            }
        }
        keys
    }

    /// In a Redis Cluster a script may only touch the keys passed in KEYS,
    /// which the store puts in one hash slot. `key` is the parameter of the
    /// `append` function, which every script calls with KEYS[1] or KEYS[2].
    #[test]
    fn scripts_touch_only_their_keys() {
        let sources = [
            ("commit_turn", COMMIT_TURN_SOURCE.as_str()),
            ("append_events", APPEND_EVENTS_SOURCE.as_str()),
            ("acquire_lease", ACQUIRE_LEASE_SOURCE),
            ("renew_lease", RENEW_LEASE_SOURCE),
            ("release_lease", RELEASE_LEASE_SOURCE),
            ("record_unrecognised", RECORD_UNRECOGNISED_SOURCE.as_str()),
            ("dismiss_unrecognised", DISMISS_UNRECOGNISED_SOURCE.as_str()),
        ];
        for (name, source) in sources {
            let keys = key_arguments(source);
            let undeclared: Vec<&str> = keys.iter().copied().filter(|key| !key.starts_with("KEYS[") && *key != "key").collect();
            assert!(!keys.is_empty(), "{name} calls no command");
            assert_eq!(undeclared, Vec::<&str>::new(), "{name} touches keys not passed in KEYS");
            for append in source.split("  append(").skip(1) {
                assert!(append.starts_with("KEYS["), "{name} appends to a key not passed in KEYS: append({append:.20}");
            }
        }
    }
}

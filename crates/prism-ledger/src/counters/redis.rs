//! Counters in Redis, shared by every gateway instance. Each admission is one Lua script (the
//! arithmetic of [`crate::window`], on the Redis server's clock, so instances need no clock
//! agreement), each settlement another; both run under the shared link's timeout and circuit
//! breaker (`prism_cache::RedisStore::run`), so a slow or dead Redis costs one bounded wait,
//! then fails fast.
//!
//! Keys, under the configured prefix: `w:<counter>:<window index>` (a count, expiring after two
//! windows), `c:<counter>` (a sorted set of lease ids scored by expiry), `b:<counter>` (spend in
//! micro-dollars, expiring after its period). A script touches keys it builds itself, which
//! standalone Redis allows and Redis Cluster does not: use one Redis (or a primary with
//! replicas), not a cluster.

use async_trait::async_trait;
use prism_cache::RedisStore;
use redis::Script;

use super::CounterStore;
use crate::LedgerError;
use crate::limits::{AdmitPlan, Failed, Settlement, StoreReply};
use crate::window::Window;

const ADMIT: &str = r"
local prefix = ARGV[1]
local now = tonumber(ARGV[2])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local nw, nl, nb = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local lease_id, lease_ttl = ARGV[6], tonumber(ARGV[7])
local a = 8
local out = {now, 0, 0}
local windows, leases = {}, {}
for i = 1, nw do
  local counter, limit, amount, win = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  a = a + 4
  local idx = math.floor(now / win)
  local base = prefix .. 'w:' .. counter .. ':'
  local cur = math.max(0, tonumber(redis.call('GET', base .. idx) or '0'))
  local prev = math.max(0, tonumber(redis.call('GET', base .. (idx - 1)) or '0'))
  local load = cur + math.floor(prev * (win - now % win) / win)
  if out[2] == 0 and load + amount > limit then out[2] = 1; out[3] = i end
  windows[i] = {base .. idx, amount, win}
  out[#out + 1] = idx; out[#out + 1] = cur; out[#out + 1] = prev
end
for i = 1, nl do
  local key, limit = prefix .. 'c:' .. ARGV[a], tonumber(ARGV[a + 1])
  a = a + 2
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if out[2] == 0 and redis.call('ZCARD', key) >= limit then out[2] = 2; out[3] = i end
  leases[i] = key
end
for i = 1, nb do
  local spent = tonumber(redis.call('GET', prefix .. 'b:' .. ARGV[a]) or '0')
  if out[2] == 0 and spent >= tonumber(ARGV[a + 1]) then out[2] = 3; out[3] = i end
  a = a + 2
end
if out[2] == 0 then
  for i = 1, nw do
    local w = windows[i]
    redis.call('INCRBY', w[1], w[2])
    redis.call('PEXPIRE', w[1], 2 * w[3] + 1000)
  end
  for i = 1, nl do
    redis.call('ZADD', leases[i], now + lease_ttl, lease_id)
    redis.call('PEXPIRE', leases[i], lease_ttl + 1000)
  end
end
return out
";

const SETTLE: &str = r"
local prefix = ARGV[1]
local nw, nl, ns = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local lease_id = ARGV[5]
local a = 6
for i = 1, nw do
  local key, delta = prefix .. 'w:' .. ARGV[a] .. ':' .. ARGV[a + 1], tonumber(ARGV[a + 2])
  a = a + 3
  if delta ~= 0 and redis.call('EXISTS', key) == 1 then
    if redis.call('INCRBY', key, delta) < 0 then redis.call('SET', key, 0, 'KEEPTTL') end
  end
end
for i = 1, nl do
  redis.call('ZREM', prefix .. 'c:' .. ARGV[a], lease_id)
  a = a + 1
end
for i = 1, ns do
  local key, micros, ttl = prefix .. 'b:' .. ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  a = a + 3
  if micros > 0 then
    redis.call('INCRBY', key, micros)
    redis.call('PEXPIRE', key, ttl)
  end
end
return 1
";

/// [`CounterStore`] on Redis.
#[derive(Debug, Clone)]
pub struct RedisCounters {
    link: RedisStore,
    admit: Script,
    settle: Script,
}

impl RedisCounters {
    /// Counters on `link`, under its key prefix. No I/O until the first admission.
    pub fn new(link: RedisStore) -> Self {
        RedisCounters { link, admit: Script::new(ADMIT), settle: Script::new(SETTLE) }
    }
}

#[async_trait]
impl CounterStore for RedisCounters {
    async fn admit(&self, plan: &AdmitPlan) -> Result<StoreReply, LedgerError> {
        let mut inv = self.admit.prepare_invoke();
        inv.arg(self.link.key_prefix())
            .arg(plan.now_ms.unwrap_or(0))
            .arg(plan.windows.len())
            .arg(plan.leases.len())
            .arg(plan.budgets.len())
            .arg(&plan.lease_id)
            .arg(plan.lease_ttl_ms);
        for w in &plan.windows {
            inv.arg(&w.counter).arg(w.limit).arg(w.amount).arg(w.window_ms);
        }
        for l in &plan.leases {
            inv.arg(&l.counter).arg(l.limit);
        }
        for b in &plan.budgets {
            inv.arg(&b.counter).arg(b.limit_micros);
        }
        let out: Vec<i64> = self
            .link
            .run(|mut conn| async move { inv.invoke_async(&mut conn).await })
            .await
            .map_err(|e| LedgerError::Counters(Box::new(e)))?;
        parse_admit(&out, plan)
    }

    async fn settle(&self, settlement: &Settlement) -> Result<(), LedgerError> {
        let mut inv = self.settle.prepare_invoke();
        inv.arg(self.link.key_prefix())
            .arg(settlement.windows.len())
            .arg(settlement.leases.len())
            .arg(settlement.spend.len())
            .arg(&settlement.lease_id);
        for (counter, index, _, delta) in &settlement.windows {
            inv.arg(counter).arg(*index).arg(*delta);
        }
        for counter in &settlement.leases {
            inv.arg(counter);
        }
        for (counter, micros, ttl) in &settlement.spend {
            inv.arg(counter).arg(*micros).arg(*ttl);
        }
        self.link
            .run(|mut conn| async move { inv.invoke_async::<i64>(&mut conn).await })
            .await
            .map(drop)
            .map_err(|e| LedgerError::Counters(Box::new(e)))
    }

    fn name(&self) -> &'static str {
        "redis"
    }
}

fn parse_admit(out: &[i64], plan: &AdmitPlan) -> Result<StoreReply, LedgerError> {
    let bad = || LedgerError::Counters("the admission script returned an unexpected reply".into());
    if out.len() != 3 + 3 * plan.windows.len() {
        return Err(bad());
    }
    let as_u64 = |v: i64| u64::try_from(v).map_err(|_| bad());
    let now_ms = as_u64(out[0])?;
    let index = usize::try_from(out[2]).map_err(|_| bad())?.checked_sub(1);
    let failed = match (out[1], index) {
        (0, _) => None,
        (1, Some(i)) if i < plan.windows.len() => Some(Failed::Window(i)),
        (2, Some(i)) if i < plan.leases.len() => Some(Failed::Lease(i)),
        (3, Some(i)) if i < plan.budgets.len() => Some(Failed::Budget(i)),
        _ => return Err(bad()),
    };
    let windows = out[3..]
        .chunks_exact(3)
        .map(|w| {
            Ok(Window { index: as_u64(w[0])?, current: as_u64(w[1])?, previous: as_u64(w[2])? })
        })
        .collect::<Result<_, LedgerError>>()?;
    Ok(StoreReply { now_ms, windows, failed })
}

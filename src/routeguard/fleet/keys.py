"""Every Redis key and channel the fleet uses, under one prefix (``redis.key_prefix``)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ACQUIRE_SCRIPT", "HSET_NEWER_SCRIPT", "RELEASE_SCRIPT", "SET_NEWER_SCRIPT", "Keys"]


@dataclass(frozen=True)
class Keys:
    prefix: str

    @property
    def channel(self) -> str:
        """Pub/sub: breaker, cooldown, weights and admin records, as they happen."""
        return f"{self.prefix}events"

    @property
    def breakers(self) -> str:
        """Hash deployment -> newest breaker record, for reconciliation and late joiners."""
        return f"{self.prefix}breakers"

    @property
    def cooldowns(self) -> str:
        """Hash deployment -> newest 429 cooldown record."""
        return f"{self.prefix}cooldowns"

    @property
    def weights(self) -> str:
        """String: the newest weight-overrides record (persists across restarts)."""
        return f"{self.prefix}weights"

    @property
    def revoked_keys(self) -> str:
        """Hash client key id -> newest revoke/unrevoke admin record (late joiners adopt it)."""
        return f"{self.prefix}revoked_keys"

    @property
    def members(self) -> str:
        """Hash member id -> heartbeat."""
        return f"{self.prefix}members"

    def probe(self, deployment: str) -> str:
        """Who may probe a recovering deployment (``SET NX PX``)."""
        return f"{self.prefix}probe:{deployment}"

    def lease(self, name: str) -> str:
        return f"{self.prefix}lease:{name}"

    def ack(self, action_id: str) -> str:
        return f"{self.prefix}ack:{action_id}"

    def usage(self, deployment: str, minute: int) -> str:
        """Fleet-wide requests/tokens of one deployment in one wall-clock minute (a hash)."""
        return f"{self.prefix}usage:{deployment}:{minute}"

    def key_usage(self, key_id: str, minute: int) -> str:
        """Fleet-wide requests/tokens of one client key in one wall-clock minute (a hash)."""
        return f"{self.prefix}keyusage:{key_id}:{minute}"

    def key_spend(self, key_id: str, period_start: float) -> str:
        """Fleet-wide spend (USD, a float string) of one client key in one budget period."""
        return f"{self.prefix}keyspend:{key_id}:{int(period_start)}"


# Take the key if free, renew it if already ours; 1 when we hold it afterwards.
ACQUIRE_SCRIPT = """
local v = redis.call('GET', KEYS[1])
if v == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# Delete the key only if it is still ours.
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# Write a record into a hash field (ARGV[1] field, ARGV[2] value, ARGV[3] its ``at``) unless the
# field already holds a newer record; junk in the field is simply overwritten.
HSET_NEWER_SCRIPT = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local ok, obj = pcall(cjson.decode, cur)
  local at = ok and type(obj) == 'table' and tonumber(obj['at'])
  if at and at > tonumber(ARGV[3]) then
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

# The same for a plain string key (ARGV[1] value, ARGV[2] its ``at``).
SET_NEWER_SCRIPT = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, obj = pcall(cjson.decode, cur)
  local at = ok and type(obj) == 'table' and tonumber(obj['at'])
  if at and at > tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""

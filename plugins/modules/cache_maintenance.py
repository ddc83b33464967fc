#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: cache_maintenance
short_description: Statistics and cleanup of the BIM Wall System's Redis cache
version_added: 0.1.0
description:
  - Reads the statistics of the application's Redis cache (hit rate from keyspace hits and misses,
    used versus maximum memory, evictions, expired keys) before and after the operations.
  - C(cleanup) removes the application's stale entries under O(key_prefix), walking the key space with
    C(SCAN) (never C(KEYS)). A key idle (C(OBJECT IDLETIME)) longer than O(max_idle) seconds, or a key
    without TTL idle longer than O(no_ttl_max_idle), is removed with C(UNLINK).
  - C(purge) runs C(MEMORY PURGE) so the allocator (jemalloc) gives dirty pages back to the system.
  - C(stats) only reads.
  - The health check's cache check uses the same statistics code.
author:
  - BIM Wall System operations team (@bim-wall-system)
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
    details: Counts the keys a cleanup would remove and their memory; removes nothing, purges nothing.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: none
options:
  cache_url:
    description:
      - Redis URL of the application cache, C(redis://host:port/db). Usually the inventory variable C(bim_cache_url).
      - May hold a password, so it is never logged; prefer O(cache_password).
    type: str
    required: true
  cache_password:
    description: Password of the Redis server. Never logged.
    type: str
  operations:
    description: What to do, in this order.
    type: list
    elements: str
    choices: [stats, cleanup, purge]
    default: [stats]
  key_prefix:
    description:
      - Prefix of the application's keys; C(cleanup) never touches a key outside it. Required for C(cleanup).
    type: str
  max_idle:
    description: Keys under O(key_prefix) unused for more than this many seconds are removed by C(cleanup).
    type: int
  no_ttl_max_idle:
    description:
      - Keys under O(key_prefix) that have no TTL (they never expire on their own) and are unused for more
        than this many seconds are removed. Defaults to O(max_idle).
    type: int
  timeout:
    description: Seconds to wait for the cache to answer.
    type: float
    default: 5
requirements:
  - redis (redis-py) on the managed host
seealso:
  - module: bim.wall_system.db_maintenance
'''

EXAMPLES = r'''
- name: Daily cache optimization
  bim.wall_system.cache_maintenance:
    cache_url: redis://127.0.0.1:6379/0
    operations: [stats, cleanup, purge]
    key_prefix: "bim:"
    max_idle: 86400

- name: What would a one-hour idle policy remove?
  bim.wall_system.cache_maintenance:
    cache_url: redis://127.0.0.1:6379/0
    operations: [cleanup]
    key_prefix: "bim:geometry:"
    max_idle: 3600
  check_mode: true
'''

RETURN = r'''
stats_before:
  description: Cache statistics before the operations (see docs/maintenance.md for every key).
  returned: always
  type: dict
  sample: {hit_rate: 0.93, keyspace_hits: 9300, keyspace_misses: 700, used_memory: 1048576, max_memory: null,
           memory_ratio: null, evictions: 0, expired_keys: 12, keys: 340, prefix_keys: 300}
stats_after:
  description: Cache statistics after the operations.
  returned: always
  type: dict
  sample: {hit_rate: 0.93, used_memory: 917504, evictions: 0, expired_keys: 12, keys: 290, prefix_keys: 250}
cleanup:
  description: What C(cleanup) scanned and removed (or would remove in check mode).
  returned: when cleanup ran
  type: dict
  sample: {scanned: 300, removed: 50, removed_bytes_estimate: 131072, freed_bytes: 126000,
           policy: {prefix: "bim:", max_idle: 86400, no_ttl_max_idle: 86400}}
purge:
  description: Result of C(MEMORY PURGE).
  returned: when purge ran
  type: dict
  sample: {purged: true, supported: true, rss_before: 7135232, rss_after: 6500000, freed_bytes: 635232, message: MEMORY PURGE done}
freed_bytes:
  description: Bytes the cleanup freed (drop of used_memory) plus bytes the purge gave back (drop of RSS).
  returned: always
  type: int
  sample: 761232
results:
  description: One entry per operation, {operation, success, changed, duration_ms, details}.
  returned: always
  type: list
  elements: dict
  sample: [{operation: cleanup, success: true, changed: true, duration_ms: 12, details: {removed: 50}}]
msg:
  description: Summary.
  returned: always
  type: str
  sample: "cleanup removed 50 keys under 'bim:'; purge freed 635232 bytes"
'''

import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.bim.wall_system.plugins.module_utils.cache.redis_cache import (
    HAS_REDIS,
    REDIS_IMPORT_ERROR,
    CacheError,
    cleanup_cache,
    memory_purge,
    read_cache_stats,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            cache_url=dict(type="str", required=True, no_log=True),
            cache_password=dict(type="str", no_log=True),
            operations=dict(type="list", elements="str", default=["stats"], choices=["stats", "cleanup", "purge"]),
            key_prefix=dict(type="str", no_log=False),
            max_idle=dict(type="int"),
            no_ttl_max_idle=dict(type="int"),
            timeout=dict(type="float", default=5.0),
        ),
        required_if=[("operations", "cleanup", ("key_prefix",))],
        supports_check_mode=True,
    )
    if not HAS_REDIS:
        module.fail_json(msg=missing_required_lib("redis"), exception=str(REDIS_IMPORT_ERROR))
    p = module.params
    url, password, prefix = p["cache_url"], p["cache_password"], p["key_prefix"]
    if "cleanup" in p["operations"]:
        if not prefix:
            module.fail_json(msg="cleanup needs a non-empty key_prefix: it only ever touches the application's keys")
        if p["max_idle"] is None and p["no_ttl_max_idle"] is None:
            module.fail_json(msg="cleanup needs max_idle and/or no_ttl_max_idle (seconds): the age policy")
        for name in ("max_idle", "no_ttl_max_idle"):
            if p[name] is not None and p[name] < 0:
                module.fail_json(msg="%s must be 0 or more seconds" % name)
    result = dict(changed=False, results=[], freed_bytes=0)
    try:
        result["stats_before"] = read_cache_stats(url, prefix=prefix, password=password, timeout=p["timeout"])
        for op in dict.fromkeys(p["operations"]):
            started = time.monotonic()
            if op == "stats":
                details, changed = dict(hit_rate=result["stats_before"]["hit_rate"]), False
            elif op == "cleanup":
                details = cleanup_cache(url, prefix, max_idle=p["max_idle"], no_ttl_max_idle=p["no_ttl_max_idle"],
                                        check_mode=module.check_mode, password=password, timeout=p["timeout"])
                changed = details["removed"] > 0
                result["cleanup"] = details
                result["freed_bytes"] += details["freed_bytes"]
            else:
                details = memory_purge(url, check_mode=module.check_mode, password=password, timeout=p["timeout"])
                # giving memory back to the OS does not change what the cache holds
                changed = False
                result["purge"] = details
                result["freed_bytes"] += details["freed_bytes"]
            result["changed"] = result["changed"] or changed
            result["results"].append(dict(operation=op, success=True, changed=changed,
                                          duration_ms=int((time.monotonic() - started) * 1000), details=details))
        result["stats_after"] = read_cache_stats(url, prefix=prefix, password=password, timeout=p["timeout"])
    except CacheError as exc:
        module.fail_json(msg=str(exc), **result)
    parts = []
    if "cleanup" in result:
        verb = "would remove" if module.check_mode else "removed"
        parts.append("cleanup %s %d of %d keys under %r" % (verb, result["cleanup"]["removed"],
                                                            result["cleanup"]["scanned"], prefix))
    if "purge" in result:
        parts.append(result["purge"]["message"])
    hit = result["stats_after"]["hit_rate"]
    parts.append("hit rate %s" % ("n/a" if hit is None else "%.3f" % hit))
    result["msg"] = "; ".join(parts)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

"""Redis Cluster: ``redis+cluster://[:password@]host:port[,host:port…]`` URLs.

Every script pyresque runs declares its keys, so the scripts run on a cluster when every key of a
namespace lands in one slot: give the namespace a hash tag (``--namespace '{resque}'``). Ruby
Resque's keys never shared a slot, so a cluster is for pyresque-only fleets (or Ruby clients that
use the same hash-tagged namespace through redis-namespace).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from redis.cluster import ClusterNode, RedisCluster

from pyresque.errors import ConfigError

SCHEME = "redis+cluster"


def is_cluster_url(url: str) -> bool:
    return url.lower().startswith(SCHEME + "://")


def connect_cluster(url: str, options: dict[str, Any]) -> RedisCluster:
    """A cluster client seeded with the URL's nodes (it discovers the others itself)."""
    parts = urlsplit(url)
    nodes = []
    for host_port in parts.netloc.rpartition("@")[2].split(","):
        host, _, port = host_port.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"cluster URL: {host_port!r} is not host:port")
        nodes.append(ClusterNode(host.strip("[]"), int(port)))  # type: ignore[no-untyped-call]
    userinfo = parts.netloc.rpartition("@")[0]
    user, _, password = userinfo.partition(":")
    options = {k: v for k, v in options.items() if k != "health_check_interval"}
    return RedisCluster(
        startup_nodes=nodes,
        username=unquote(user) or None,
        password=unquote(password) or None,
        **options,
    )

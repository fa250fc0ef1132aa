"""The pre-forking worker pool: resque-pool's master, configuration and supervision.

A package rather than a module because the pool has several jobs (configuration, planning,
processes, signals) that each deserve a small module of their own.
"""

from __future__ import annotations

from pyresque.pool.hooks import after_prefork, after_spawn, child_exit, setup, siginfo

__all__ = ["after_prefork", "after_spawn", "child_exit", "setup", "siginfo"]

"""The one exception hierarchy of pyresque.

Every error pyresque raises on purpose derives from :class:`PyresqueError`, so an application can
catch ours without catching its own.
"""

from __future__ import annotations


class PyresqueError(Exception):
    """Base class of every error pyresque raises on purpose."""


class ConfigError(PyresqueError):
    """A setting, option or configuration file is wrong; the message says which and why."""


class PayloadError(PyresqueError):
    """A job payload is not what the protocol allows (invalid JSON, no class, args not a list)."""


class UnknownJobClass(PyresqueError):
    """A payload names a job class that is neither registered nor under an allowed import path."""


class NoSuchFailure(PyresqueError):
    """A failure record asked for by its index is not there (removed meanwhile), or kept changing
    while it was being retried."""


class DontPerform(PyresqueError):
    """Raised by a before_perform or around_perform hook to skip the job without failing it."""


class TermException(BaseException):
    """Raised inside a running job when its worker shuts down and the job must stop now.

    It derives from BaseException, as Resque's ``TermException`` is not a ``StandardError``, so that a
    job's own ``except Exception`` does not swallow the shutdown.
    """


class JobKilled(BaseException):
    """Raised inside an in-process job that an operator killed (USR1).

    A BaseException, like :class:`TermException`, so a job's own ``except Exception`` cannot
    swallow the kill and carry on.
    """


class DirtyExit(PyresqueError):
    """A job's process ended without reporting a result (killed by a signal, or exited early)."""


class JobTimeout(PyresqueError):
    """A job ran past its time limit; its failure record names the limit."""

"""A job with a fixed signature, for the command line's enqueue checks."""

from __future__ import annotations

import pyresque


@pyresque.job(queue="mail", name="Welcome")
def welcome(user_id: int, template: str = "default") -> None:
    """Takes one or two arguments."""

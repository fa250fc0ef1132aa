"""An app whose before_first_fork hook raises an OSError: a boot failure, not a Redis outage."""

from __future__ import annotations

from typing import Any

import pyresque


@pyresque.before_first_fork
def _broken(worker: Any) -> None:
    raise OSError("the app's own file is missing")

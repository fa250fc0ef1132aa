"""``python -m pyresque``: the same as the ``pyresque`` command."""

from __future__ import annotations

import sys

from pyresque.cli.main import main

sys.exit(main())

"""``python -m pyresque.settings --markdown``: the settings tables of docs/configuration.md."""

from __future__ import annotations

import argparse
import sys

from pyresque.settings.docs import markdown

parser = argparse.ArgumentParser(prog="python -m pyresque.settings", description=__doc__)
parser.add_argument("--markdown", action="store_true", help="print the tables in Markdown")
if parser.parse_args().markdown:
    sys.stdout.write(markdown())
else:
    parser.print_help()

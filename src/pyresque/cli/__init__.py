"""The command lines: ``pyresque`` and its subcommands, and ``resque-pool``."""

"""The Redis layer: connections, script calls and typed operations; nothing above it calls redis-py."""

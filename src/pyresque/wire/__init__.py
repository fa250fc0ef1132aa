"""What the bytes in Redis mean: key names, payloads, records, Lua texts. Standard library only."""

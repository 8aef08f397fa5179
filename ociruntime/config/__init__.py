"""config.json → a typed, validated model (see model.py). Parsing happens once; nothing
downstream reads raw dicts."""

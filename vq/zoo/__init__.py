"""Shipped default models, one artifact folder each (see `vq.models`).

Each was trained here with `vq train` on ../shared/data and exported with `vq export`;
the exact commands and the held-out metrics are in its card.json.
"""

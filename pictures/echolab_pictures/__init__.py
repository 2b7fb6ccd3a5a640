"""``make pictures``: the lab's lessons drawn from real runs of its containers (docs/pictures)."""

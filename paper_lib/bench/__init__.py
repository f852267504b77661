"""Benchmarks: ``kernel`` (our process-set kernel against the authors' trie), ``steps`` (where a training step's time
goes). ``python -m paper_lib.bench`` runs them."""

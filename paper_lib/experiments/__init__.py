"""The experiments: which runs each scale trains (``plan``), the runner (``python -m paper_lib.experiments``), and
the experiments that are not training runs (``theorem``: notebook 01; ``downstream``, ``overlap``)."""

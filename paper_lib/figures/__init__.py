"""Figures (the only part of paper_lib that imports matplotlib): ``plots`` for the notebooks' figures, ``groupview``
for the HTML views of logged groups."""

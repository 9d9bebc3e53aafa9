"""Experiments built from the layers below: the default suite, the paper reproductions (toy,
ablation, spectral) and the path gallery."""

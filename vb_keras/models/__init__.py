"""Models: trunks (ResNets; later the Conformer family) under named task outputs."""

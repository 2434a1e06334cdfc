"""Datasets as the runs see them: in-memory splits, variable-length sequences, streamed splits."""

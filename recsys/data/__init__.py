"""The data path: a snapshot of the interactions, its split, the graph and BPR samples."""

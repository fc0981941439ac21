"""``seqbench publish``: asv's dashboard, built from a results folder, that works without internet."""

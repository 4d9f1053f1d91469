"""Building blocks of ``training/train.py`` (recipes, batches, checkpoints, optimisation, the loop)."""

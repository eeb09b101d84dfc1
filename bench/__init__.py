"""Gleaner's benchmark: the real stack on this machine, measured case by case (`make bench`)."""

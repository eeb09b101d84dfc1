"""Modules written as a user of the public `gleaner` package would, type-checked with no Any allowed."""

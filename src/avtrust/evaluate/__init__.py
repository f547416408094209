"""Evaluation: inference over benchmark shards, answer parsing, metrics and the m2 judge."""

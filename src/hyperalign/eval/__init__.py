"""Evaluation: does personalization work? Authorship attribution, pairwise judges, cost; shared run folders."""

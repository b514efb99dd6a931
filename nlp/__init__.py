"""Tagging of postmortem text with Star Model facets and ML failure categories; spaCy only."""

"""Postmortem KB domain: parsing, storage, indexing, search and trends, free of any web framework."""

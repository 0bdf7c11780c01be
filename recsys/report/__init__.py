"""The HTML report of a version: the page and its plots."""

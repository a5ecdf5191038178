"""Shipped release data (`releases.yaml`) and its loader."""

from kubehop.data.loader import load_release_data, parse_release_data

__all__ = ["load_release_data", "parse_release_data"]

"""Command line and local runner for the IMDB sentiment app."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("imdb-sentiment")
except PackageNotFoundError:  # running from a checkout without installing it
    __version__ = "0.0.0"

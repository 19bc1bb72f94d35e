"""extractor: typed fields out of piles of documents, with cost and consistency accounting.

The package root stays import-light so that `extractor --help` is fast; import the library
entry point from `extractor.extraction.runner`.
"""

__version__ = "0.1.0"

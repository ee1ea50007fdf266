"""``--params 'k=v,k=v'`` of the benchmarks: a setting of ``segment``'s keywords."""

import argparse
import ast


def parse_params(text):
    """'k=v,k=v' -> dict; values are Python literals (``None``, numbers, tuples), else strings."""
    out = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        if "=" not in item:
            raise argparse.ArgumentTypeError(f"--params items must be k=v; got {item!r}.")
        key, value = item.split("=", 1)
        try:
            value = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            value = value.strip()
        out[key.strip()] = value
    return out

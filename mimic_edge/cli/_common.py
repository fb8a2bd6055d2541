"""Small helpers shared by subcommands: parsing lists and writing outputs."""
from __future__ import annotations

import argparse


def int_list(text: str) -> tuple[int, ...]:
    """'1,8,64' → (1, 8, 64); argparse reports a ValueError as a clear usage error."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def str_list(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


EXAMPLES_HELP = argparse.RawDescriptionHelpFormatter

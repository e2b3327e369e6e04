"""The ``poster-pipeline`` command line."""

from __future__ import annotations

import logging

import click

from poster_pipeline import __version__
from poster_pipeline.emulator import emulator_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="poster-pipeline")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def main(verbose: bool) -> None:
    """Keep a restaurant's Poster POS back-office data fresh in PostgreSQL."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


main.add_command(emulator_command, name="emulator")

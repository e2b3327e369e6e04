"""``python -m poster_pipeline.emulator``: the emulator without the top-level CLI."""

from poster_pipeline.emulator.cli import emulator_command

if __name__ == "__main__":
    emulator_command(prog_name="python -m poster_pipeline.emulator")

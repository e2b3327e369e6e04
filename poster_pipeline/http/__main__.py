"""``python -m poster_pipeline.http``: the ``serve`` command on its own."""

from poster_pipeline.http.cli import serve_command

serve_command(prog_name="python -m poster_pipeline.http")

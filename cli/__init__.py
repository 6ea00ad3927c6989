"""The `ganpipe` command: argument parsing, and what a finished run reports."""

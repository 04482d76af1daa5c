"""The command line: thin Typer commands over the core. The only package importing typer/rich."""

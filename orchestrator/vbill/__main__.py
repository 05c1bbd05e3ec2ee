"""`python -m vbill` runs the command line."""

from vbill.cli.main import main

main(prog_name="vbill")

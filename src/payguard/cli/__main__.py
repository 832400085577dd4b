"""`python -m payguard.cli` runs the same command line as `payguard`."""

from payguard.cli.main import main

main()

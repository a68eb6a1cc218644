"""`python -m gancli` runs the command line."""

from gancli.cli import main

if __name__ == "__main__":
    main()

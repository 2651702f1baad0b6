"""`python -m sotlat`: the same as the `sotlat` command."""

from sotlat.cli import main

if __name__ == "__main__":
    main()

"""``python -m brian_dendrite.validation``: the validation command line (the same as ``brian-dendrite validate``)."""

from .runner import main

if __name__ == "__main__":
    raise SystemExit(main())

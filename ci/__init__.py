"""This repository's automation on top of ``ci_kit``: nox helpers and deploy tasks.

Not part of the ``ci-kit`` distribution: ``noxfile.py`` imports :mod:`ci.sessions`
and ``tasks.py`` imports :mod:`ci.deploy`, both from a clone of this repository.
"""

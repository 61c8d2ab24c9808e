"""What the kit's tests share beyond fixtures: plain functions and constants.

Imported as ``tests.helpers.<module>``; fixtures stay in the conftests, which
pytest loads itself and which no test imports.
"""

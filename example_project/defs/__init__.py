"""The example as a `dg` defs folder: the Profiles project as a component (profiles/defs.yaml) plus the CSV loaders.

An alternative to example_project/definitions.py (which workspace.yaml loads); both give the same assets.
"""

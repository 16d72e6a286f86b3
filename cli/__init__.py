"""The ``efat`` command line and the demo pipeline: the app, on top of every package.

Nothing in the library imports it; the example scripts use its shared arguments
(:mod:`cli.args`), figures (:mod:`cli.figures`) and map cache (:mod:`cli.maps`).
"""

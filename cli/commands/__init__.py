"""Sub-commands of ``efat``: each module has ``register(subparsers)``."""

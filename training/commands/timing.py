"""``efat timing``: per-layer WS cycles of a SCALE-Sim topology (placeholder until built)."""


def register(sub):
    p = sub.add_parser("timing", help="per-layer cycles of a SCALE-Sim topology CSV")
    p.set_defaults(func=lambda args: (_ for _ in ()).throw(ValueError("not built yet")))

"""``efat population``: generate, save, summarise and plot chip populations (placeholder)."""


def register(sub):
    p = sub.add_parser("population", help="generate / summarise a population of faulty chips")
    p.set_defaults(func=lambda args: (_ for _ in ()).throw(ValueError("not built yet")))

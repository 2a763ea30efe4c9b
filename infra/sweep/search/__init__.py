"""A search over a space of configurations: which to measure next, what each is worth,
and the same search replayed offline against results measured earlier."""

"""The core-complex state of a taking-turns pair from its core-to-core round trips (ns; None where
bench/pingpong did not run), shared by bench/report.py and bench/report_kv.py."""


def state(rts):
    """'1' when every round trip of a pair says one core complex (< 200 ns), '2' when every one says two
    (> 300 ns), else 'x' (the machine switched during the pair)."""
    v = [x for x in rts if x is not None]
    if v and all(x < 200 for x in v): return "1"
    if v and all(x > 300 for x in v): return "2"
    return "x"

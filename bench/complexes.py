"""The core-complex state of a taking-turns pair from its core-to-core round trips (ns; None where
bench/pingpong did not run) and sllm's bandwidth probes, shared by bench/report.py and bench/report_kv.py."""

# The two states' bandwidths differ by ~1.7x (one complex 41-51 GB/s, two 72-83): probes of one sllm run
# further apart than this saw a switch that the round trips, taken only between the runs, can miss.
PROBE_SPLIT = 1.3


def state(rts, probes=()):
    """'1' when every round trip of a pair says one core complex (< 200 ns), '2' when every one says two
    (> 300 ns), else 'x' (the machine switched during the pair); 'x' too when sllm's probes in the pair
    are more than PROBE_SPLIT apart."""
    v = [x for x in rts if x is not None]
    p = [x for x in probes if x]
    if p and max(p) > PROBE_SPLIT * min(p): return "x"
    if v and all(x < 200 for x in v): return "1"
    if v and all(x > 300 for x in v): return "2"
    return "x"

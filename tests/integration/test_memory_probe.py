"""The bench's memory probes: a reporting handler run alone in a fresh process, its RSS measured."""

from __future__ import annotations

from harness.fetch_probe import probe, probe_generate


def test_generate_and_fetch_are_measured_alone_over_a_whole_batch() -> None:
    generate = probe_generate(10)
    # The handler started and read all ten reports in one invocation (else the probe raises), and its
    # peak is its imports plus what it held
    assert generate["targets"] == 10
    assert generate["peak_rss_mib"] > generate["imports_rss_mib"] > 50
    fetch = probe(6)
    assert fetch["pages"] > 0
    assert fetch["rows"] > 0
    assert fetch["peak_rss_mib"] > fetch["imports_rss_mib"]

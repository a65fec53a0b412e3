"""Hypothesis strategies shared by the test modules."""

from __future__ import annotations

from hypothesis import strategies as st

_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"

labels = st.builds(
    lambda first, middle, last: first + middle + last if middle or last else first,
    st.sampled_from(_ALNUM),
    st.text(alphabet=_ALNUM + "-", max_size=20),
    st.sampled_from(_ALNUM),
)
"""Valid DNS labels (tenants)."""

tenants = labels

any_host_text = st.one_of(
    st.text(max_size=80),
    st.builds(
        lambda a, b, port: f"{a}.{b}{port}",
        labels,
        st.sampled_from(["example.com", "Example.COM.", "other.org", "example.com.."]),
        st.sampled_from(["", ":80", ":65535", ":65536", ":+443", ":4_43", ":", ":0"]),
    ),
    st.text(alphabet="[]:0123456789abcdef.", max_size=45),
)
"""Arbitrary Host header values: mostly garbage, some near-valid."""

percents = st.integers(min_value=0, max_value=10_000)

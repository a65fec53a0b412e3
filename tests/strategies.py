"""Hypothesis strategies shared by the test modules."""

from __future__ import annotations

from hypothesis import strategies as st

_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"

labels = st.builds(
    lambda first, middle, last: first + middle + last if middle or last else first,
    st.sampled_from(_ALNUM),
    st.text(alphabet=_ALNUM + "-", max_size=20),
    st.sampled_from(_ALNUM),
).filter(lambda label: not label.startswith("xn--"))
"""Valid DNS labels (tenants); ``xn--`` labels are valid only as IDNA A-labels, so none here."""

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

_LOOKALIKES = "\u212a\u212b\u017f\u0131\u0130\uff41\uff21\uff10\u0660\u00df\u00e9\u0456"

unicode_host_text = st.one_of(
    any_host_text,
    st.builds(
        lambda a, b, port: f"{a}.{b}{port}",
        st.text(alphabet=_ALNUM + "-" + _LOOKALIKES, min_size=1, max_size=12),
        st.sampled_from(["example.com", "eu.example.com", "EXAMPLE.COM.", "ex\u212aample.com"]),
        st.sampled_from(["", ":80", ":080", ":\uff18\uff10", ":\u0668\u0660"]),
    ),
    st.builds(
        lambda punycode, port: f"xn--{punycode}.example.com{port}",
        st.text(alphabet=_ALNUM + "-", min_size=0, max_size=12),
        st.sampled_from(["", ":443"]),
    ),
)
"""Host values with Unicode look-alikes of ASCII letters and digits, and ``xn--`` labels."""

percents = st.integers(min_value=0, max_value=10_000)

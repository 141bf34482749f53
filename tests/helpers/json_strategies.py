"""Hypothesis strategies for JSON values, shared by the crafted-file property tests."""

from __future__ import annotations

from hypothesis import strategies as st

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
"""Any JSON leaf: null, booleans, integers past int64, floats with NaN and infinities, text."""

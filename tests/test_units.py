"""Quantity parsing: SI storage, GB vs GiB, bits vs bytes, dense vs sparse, wrong dimensions.

Expected values are unit definitions (SI prefixes = powers of 1000, IEC binary prefixes = powers of 1024,
IEC 80000-13) and, independently, pint's own conversions.
"""

import pytest

from llmcalc.core import units
from llmcalc.core.errors import UnitError
from llmcalc.core.units import BYTES, BYTES_PER_S, FLOP, FLOP_PER_S, SECONDS, USD_PER_HOUR, WATTS, parse


@pytest.mark.parametrize(
    "text, dim, expected",
    [
        ("80 GiB", BYTES, 80 * 2**30),
        ("80 GB", BYTES, 80e9),  # GB and GiB stay distinct: 80 GB = 74.5 GiB
        ("81559 MiB", BYTES, 81559 * 2**20),  # nvidia-smi memory.total of an H100 (fact sheet N12)
        ("3.35 TB/s", BYTES_PER_S, 3.35e12),  # bandwidth is decimal (fact sheet conventions)
        ("450 GB/s", BYTES_PER_S, 450e9),
        ("400 Gb/s", BYTES_PER_S, 50e9),  # lower-case b is a bit: 400 Gb/s InfiniBand NDR = 50 GB/s
        ("1600 Gbps", BYTES_PER_S, 200e9),  # Google's older TPU ICI figure, in bits
        ("400 GBps", BYTES_PER_S, 400e9),  # Google's newer TPU ICI figure, in bytes
        ("989 TFLOP/s", FLOP_PER_S, 989e12),
        ("989 TFLOPS", FLOP_PER_S, 989e12),  # "FLOPS" (capital S) is a rate
        ("1979 TOPS", FLOP_PER_S, 1979e12),  # int8 tera-operations per second
        ("3.14e23 FLOPs", FLOP, 3.14e23),  # "FLOPs" (lower-case s) is a count
        ("3.8e25 FLOP", FLOP, 3.8e25),
        ("34 days", SECONDS, 34 * 86400),
        ("20 ms", SECONDS, 0.02),
        ("700 W", WATTS, 700.0),
        ("2.49 USD/h", USD_PER_HOUR, 2.49 / 3600),
        ("$2.49/h", USD_PER_HOUR, 2.49 / 3600),
        ("1,979 TFLOP/s", FLOP_PER_S, 1979e12),
    ],
)
def test_parse(text, dim, expected):
    assert parse(text, dim) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "text, dim",
    [
        ("80 GB/s", BYTES),  # a bandwidth where a capacity is expected
        ("1 TB", FLOP_PER_S),  # bytes where a FLOP rate is expected
        ("989 TFLOP", FLOP_PER_S),  # a count where a rate is expected
        ("3.35 TB/s", BYTES),
        ("80", BYTES),  # a bare number is ambiguous
        ("80 GiBs", BYTES),  # unknown unit
        ("eighty GB", BYTES),
    ],
)
def test_wrong_dimension_or_unit_is_an_error(text, dim):
    with pytest.raises(UnitError):
        parse(text, dim)


def test_error_says_what_was_expected():
    with pytest.raises(UnitError, match="bandwidth.*memory size"):
        parse("80 GB/s", BYTES)


def test_parse_count_suffixes():
    assert units.parse_count("300B") == 300e9  # Narayanan 2021 §5.1: "T=300 billion tokens"
    assert units.parse_count("15.6T") == 15.6e12  # Llama 3 paper §3.3: 15.6T tokens
    assert units.parse_count("2e9") == 2e9
    with pytest.raises(UnitError):
        units.parse_count("300 GB")


def test_format_shows_decimal_and_binary():
    assert units.fmt(80 * 2**30, "B") == "85.9 GB (80.0 GiB)"
    assert units.fmt(989e12, "FLOP/s") == "989 TFLOP/s"
    assert units.fmt(450e9, "B/s") == "450 GB/s"
    assert units.fmt(3.8e25, "FLOP") == "3.8e25 FLOP"


# Independent reference: pint's conversions of the same quantities (byte and bit are pint's own units).
@pytest.mark.parametrize(
    "ours, pint_text, dim, pint_unit",
    [
        ("80 GiB", "80 GiB", BYTES, "byte"),
        ("141 GB", "141 GB", BYTES, "byte"),
        ("3.35 TB/s", "3.35 TB/s", BYTES_PER_S, "byte/s"),
        ("400 Gb/s", "400 Gbit/s", BYTES_PER_S, "byte/s"),
        ("1.5 h", "1.5 hour", SECONDS, "s"),
        ("989 TFLOP/s", "989 Tflop/s", FLOP_PER_S, "flop/s"),
    ],
)
def test_agrees_with_pint(ours, pint_text, dim, pint_unit):
    pytest.importorskip("pint")
    ureg = units.pint_registry()
    assert parse(ours, dim) == pytest.approx(ureg(pint_text).to(pint_unit).magnitude, rel=1e-12)


def test_pint_registry_keeps_bytes_and_flops_apart():
    pint = pytest.importorskip("pint")
    ureg = units.pint_registry()
    with pytest.raises(pint.DimensionalityError):
        ureg("1 TB").to("flop")


from hypothesis import given as _given  # noqa: E402
from hypothesis import strategies as _st  # noqa: E402


@_given(_st.text(max_size=12))
def test_parse_whole_is_an_int_or_one_unit_error_for_any_text(text):
    # Found by the long fuzz campaign: '\x1e2' passed a Unicode \s/\d pre-check and reached int() (ValueError).
    # Counts are ASCII digits with an optional k/M/B/T suffix; anything else is a UnitError, never another error.
    from llmcalc.core.errors import UnitError
    from llmcalc.core.units import parse_whole

    try:
        n = parse_whole(text)
    except UnitError:
        return
    assert isinstance(n, int) and text.isascii()


def test_parse_whole_refuses_a_count_longer_than_any_count_with_a_unit_error():
    # Found while timing the CLI (issue #13): 5,000 digits passed the digits-only check and int() raised ValueError
    # (CPython refuses over 4,300 digits), so `--context 111...1` was a traceback. Counts are at most 200 characters,
    # as parse_count reads them.
    from llmcalc.core.errors import UnitError
    from llmcalc.core.units import parse_whole

    assert parse_whole("9" * 200) == 10**200 - 1
    for text in ("1" * 201, "1" * 5000, " " * 199 + "12"):
        with pytest.raises(UnitError, match="as a count"):
            parse_whole(text)


@_given(_st.integers(0, 10**12), _st.sampled_from(["GB", "TB/s", "T", ""]))
def test_a_comma_groups_thousands_or_the_number_is_refused(n, suffix):
    """'1,000 GB' is 1000 GB; '8,0 GB' or '1,5T' (a decimal comma) is an error, never 80 GB or 15T (user test,
    30 Nov 2026: both were read with the comma dropped)."""
    grouped = f"{n:,}"
    parse_any = units.parse_count if suffix in ("T", "") else (lambda t: parse(t))
    assert parse_any(f"{grouped} {suffix}".strip()) == parse_any(f"{n} {suffix}".strip())
    digits = str(n)
    for cut in range(1, len(digits)):  # a comma anywhere that is not a thousands boundary
        if (len(digits) - cut) % 3 == 0:
            continue
        with pytest.raises(UnitError, match="comma"):
            parse_any(f"{digits[:cut]},{digits[cut:]} {suffix}".strip())


@_given(_st.floats(1e-3, 1e308), _st.sampled_from(["B", "B/s", "FLOP/s", "GPU", "param", "token", "s", "W", ""]))
def test_a_figure_prints_in_a_few_characters_however_large(x, unit):
    """A 10³⁰⁰ count printed its 300 digits with thousands commas, widening a table to 300 columns (user test,
    30 Nov 2026: `train --days 1e-300`, `chinchilla --flops 1e300`)."""
    text = units.fmt(x, unit)
    assert len(text) <= 32
    if unit == "B" and x >= 2**20:  # both halves say the same size: '3.5e+30 B (3.34e+24 MiB)'
        dec, binary = text.removesuffix(")").split(" (")
        assert parse(binary, BYTES) == pytest.approx(parse(dec, BYTES), rel=0.01)

"""The low-precision formats: the C conversions (gdfast._formats, src_c/lowp.h) equal the NumPy
reference (gdfast.formats, SPEC L) bit for bit, for sizes across block, SIMD and chunk
boundaries, both roundings, both maps, several block sizes, special values and any thread
count; the reference is checked against the field's own libraries (ml_dtypes, NumPy's float16,
bitsandbytes' map construction) and stochastic rounding against its definition (unbiased)."""

import numpy as np
import pytest

from gdfast import _formats as fast
from gdfast import formats as ref

SIZES = [0, 1, 7, 8, 15, 16, 31, 33, 255, 256, 257, 4099, 65536 + 33]
BLOCK_SIZES = [16, 64, 256, 2048]
MAPS = {"signed": ref.DYNAMIC_SIGNED, "unsigned": ref.DYNAMIC_UNSIGNED}
CONVERSIONS = {"bfloat16": "to_bfloat16", "float16": "to_float16"}
SPECIAL = np.array(
    [
        0.0,
        -0.0,
        np.inf,
        -np.inf,
        np.nan,
        -np.nan,
        1e-40,
        -1e-45,
        1.17e-38,
        3.39e38,
        -3.4e38,
        3.4028235e38,
        65504.0,
        65519.0,
        65520.0,
        -65536.0,
        1e5,
        6.0e-8,
        5.96e-8,
        2.98e-8,
        1e-10,
        6.1e-5,
        1.0,
        -1.0,
        1.00390625,
        1.0 + 2.0**-8,
    ],
    dtype=np.float32,
)


def values(n: int, seed: int = 0) -> np.ndarray:
    """Finite values over every scale, raw bit patterns (NaN payloads, subnormals, inf) and
    the special values, n of them."""
    rng = np.random.default_rng(seed)
    scaled = rng.standard_normal(n) * 10.0 ** rng.uniform(-44, 38, n)
    x = scaled.astype(np.float32)
    raw = rng.integers(0, 2**32, n, dtype=np.uint32).view(np.float32)
    x = np.where(rng.random(n) < 0.3, raw, x)
    k = min(n, SPECIAL.size)
    x[:k] = SPECIAL[:k]
    return x


def bits32(x: np.ndarray) -> np.ndarray:
    return x.view(np.uint32)


# ------------------------------------------------------------------ C = reference, bitwise
@pytest.mark.parametrize("fmt", CONVERSIONS)
@pytest.mark.parametrize("rounding", ref.ROUNDINGS)
@pytest.mark.parametrize("n", SIZES)
def test_round_to_16_bits_matches_reference(fmt, rounding, n):
    x = values(n, seed=n)
    key = dict(seed=11, step=3, tensor=2, stream=1, offset=5)
    expected = getattr(ref, CONVERSIONS[fmt])(x, rounding, **key)
    for threads in (1, 2, 3):
        got = getattr(fast, CONVERSIONS[fmt])(x, rounding, **key, threads=threads)
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("fmt", CONVERSIONS)
def test_stochastic_rounding_across_the_2_to_32_key_boundary(fmt):
    x = values(4099, seed=1)
    key = dict(seed=2**64 - 1, step=2**40, tensor=7, stream=2**32 - 1, offset=2**32 - 1000)
    expected = getattr(ref, CONVERSIONS[fmt])(x, "stochastic", **key)
    got = getattr(fast, CONVERSIONS[fmt])(x, "stochastic", **key, threads=2)
    np.testing.assert_array_equal(got, expected)


def test_round_keeps_shape():
    x = values(60).reshape(3, 4, 5)
    assert fast.to_bfloat16(x).shape == (3, 4, 5) == ref.to_bfloat16(x).shape


@pytest.mark.parametrize("fmt", ["bfloat16", "float16"])
def test_widen_every_16_bit_pattern(fmt):
    every = np.arange(2**16, dtype=np.uint16)
    widen = "from_" + fmt
    expected = getattr(ref, widen)(every)
    for threads in (1, 2):
        np.testing.assert_array_equal(
            bits32(getattr(fast, widen)(every, threads=threads)), bits32(expected)
        )
    # Rounding a widened value gives back its bits (NaNs: quieted).
    again = getattr(ref, CONVERSIONS[fmt])(expected)
    finite_or_inf = ~np.isnan(expected)
    np.testing.assert_array_equal(again[finite_or_inf], every[finite_or_inf])


@pytest.mark.parametrize("n", [0, 1, 33, 4099, 65536 + 7])
def test_random_bits_match_reference(n):
    for offset in (0, 2**32 - 17):
        expected = ref.random_bits(n, 5, 6, 7, 8, offset)
        np.testing.assert_array_equal(fast.random_bits(n, 5, 6, 7, 8, offset, threads=2), expected)


@pytest.mark.parametrize("name", MAPS)
@pytest.mark.parametrize("block_size", BLOCK_SIZES)
@pytest.mark.parametrize("n", SIZES)
def test_quantize_blockwise_matches_reference(name, block_size, n):
    code = MAPS[name]
    x = values(n, seed=n + 1)
    finite = np.isfinite(x)
    # Mostly finite values of an optimizer state's spread; a few blocks with NaN or inf.
    x = np.where(finite & (np.abs(x) < 1e30), x, np.float32(0.5))
    x[::997] = SPECIAL[np.arange(x[::997].size) % SPECIAL.size]
    q, absmax = ref.quantize_blockwise(x, code, block_size)
    back = ref.dequantize_blockwise(q, absmax, code, block_size)
    for threads in (1, 2, 3):
        q_c, absmax_c = fast.quantize_blockwise(x, code, block_size, threads=threads)
        np.testing.assert_array_equal(q_c, q)
        np.testing.assert_array_equal(bits32(absmax_c), bits32(absmax))
        back_c = fast.dequantize_blockwise(q, absmax, code, block_size, threads=threads)
        np.testing.assert_array_equal(bits32(back_c), bits32(back))


@pytest.mark.parametrize("name", MAPS)
def test_encoding_at_every_decision_point(name):
    """Each block holds 1.0, so y = x exactly: the midpoints, their float32 neighbours and the
    codes themselves, every one encoded as the reference says, which is the nearest code."""
    code = MAPS[name]
    mid = ref.map_midpoints(code)
    up, down = np.float32(np.inf), np.float32(-np.inf)
    y = np.concatenate(
        [
            mid,
            np.nextafter(mid, up),
            np.nextafter(mid, down),
            code,
            np.nextafter(code, up),
            np.nextafter(code, down),
            np.float32([0.0, -0.0, 1e-30, -1e-30, 1.0, -1.0]),
        ]
    )
    y = np.concatenate([y, -y]).astype(np.float32)
    y = np.clip(y, -1, 1)
    blocks = np.full((y.size, 16), np.float32(1.0))
    blocks[:, 0] = y
    x = blocks.reshape(-1)
    q, absmax = ref.quantize_blockwise(x, code, 16)
    np.testing.assert_array_equal(absmax, np.float32(1.0))
    q_c, _ = fast.quantize_blockwise(x, code, 16, threads=2)
    np.testing.assert_array_equal(q_c, q)
    chosen = q.reshape(-1, 16)[:, 0].astype(np.int64)
    distance = np.abs(code[None, :].astype(np.float64) - y[:, None].astype(np.float64))
    nearest = distance.min(axis=1)
    assert np.all(
        distance[np.arange(y.size), chosen]
        <= nearest + 1e-12 * (1 + nearest) + np.spacing(np.abs(y).astype(np.float32))
    )


# ------------------------------------------------------------------ the reference vs the field
def test_nearest_matches_ml_dtypes_and_numpy():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = values(200_000, seed=3)
    with np.errstate(over="ignore", invalid="ignore"):
        bf16 = x.astype(ml_dtypes.bfloat16).view(np.uint16)
        f16 = x.astype(np.float16).view(np.uint16)
    number = ~np.isnan(x)
    np.testing.assert_array_equal(ref.to_bfloat16(x)[number], bf16[number])
    np.testing.assert_array_equal(ref.to_float16(x)[number], f16[number])
    # NaN: a quiet NaN of the same sign.
    nan = np.isnan(x)
    for out, exponent, quiet in (
        (ref.to_bfloat16(x), 0x7F80, 0x0040),
        (ref.to_float16(x), 0x7C00, 0x0200),
    ):
        assert np.all(out[nan] & exponent == exponent)
        assert np.all(out[nan] & quiet == quiet)
        np.testing.assert_array_equal(out[nan] >> 15, bits32(x[nan]) >> 31)


def test_maps_are_bitsandbytes_create_dynamic_map():
    """bitsandbytes/functional.py create_dynamic_map (max_exponent_bits=7, total_bits=8), run
    here with torch's float32 linspace, gives the tables bit for bit."""
    torch = pytest.importorskip("torch")

    def create_dynamic_map(signed):
        data = []
        for i in range(7):
            items = 2**i + 1 if signed else 2 ** (i + 1) + 1
            boundaries = torch.linspace(0.1, 1, items)
            means = (boundaries[:-1] + boundaries[1:]) / 2.0
            data += ((10 ** (-6 + i)) * means).tolist()
            if signed:
                data += (-(10 ** (-6 + i)) * means).tolist()
        data += [0, 1.0]
        data.sort()
        return torch.Tensor(data).numpy()

    np.testing.assert_array_equal(bits32(create_dynamic_map(True)), bits32(ref.DYNAMIC_SIGNED))
    np.testing.assert_array_equal(bits32(create_dynamic_map(False)), bits32(ref.DYNAMIC_UNSIGNED))
    assert ref.DYNAMIC_SIGNED[127] == 0 and ref.DYNAMIC_SIGNED[255] == 1.0
    assert ref.DYNAMIC_UNSIGNED[0] == 0 and ref.DYNAMIC_UNSIGNED[255] == 1.0


# ------------------------------------------------------------------ stochastic rounding
@pytest.mark.parametrize(
    "fmt, lower, ulp",
    [
        ("bfloat16", 1.0, 2.0**-7),
        ("bfloat16", -(2.0**-127), 2.0**-133),  # bf16 subnormal range
        ("float16", 1.0, 2.0**-10),
        ("float16", 2.0**-20, 2.0**-24),  # float16 subnormal range
        ("float16", 60000.0, 32.0),
    ],
)
@pytest.mark.parametrize("fraction", [0.01, 0.25, 0.5, 0.9])
def test_stochastic_rounding_is_unbiased(fmt, lower, ulp, fraction):
    """x between two neighbours a < b: the result is a or b, b with probability (x − a)/(b − a),
    so the mean error goes to 0.  N = 2**17 draws; the bound is 5 standard deviations of the
    mean (a rounding that truncated, or rounded to nearest, is off by far more)."""
    n = 2**17
    x = np.float32(lower + fraction * ulp)
    p = (float(x) - lower) / ulp  # the fraction x really has, after rounding x to float32
    xs = np.full(n, x, dtype=np.float32)
    rounded = getattr(ref, CONVERSIONS[fmt])(xs, "stochastic", seed=1, step=9, tensor=4)
    widened = getattr(ref, "from_" + fmt)(rounded).astype(np.float64)
    assert set(np.unique(widened)) <= {lower, lower + ulp}
    sigma = ulp * np.sqrt(p * (1 - p) / n)
    assert abs(widened.mean() - float(x)) <= 5 * sigma
    np.testing.assert_array_equal(
        fast.__dict__[CONVERSIONS[fmt]](xs, "stochastic", seed=1, step=9, tensor=4, threads=2),
        rounded,
    )


@pytest.mark.parametrize("fmt", CONVERSIONS)
def test_stochastic_rounding_keeps_representable_values(fmt):
    every = np.arange(2**16, dtype=np.uint16)
    widened = getattr(ref, "from_" + fmt)(every)
    keep = ~np.isnan(widened)
    again = getattr(ref, CONVERSIONS[fmt])(widened, "stochastic", seed=3)
    np.testing.assert_array_equal(again[keep], every[keep])


def test_random_bits_depend_on_every_key_part():
    base = ref.random_bits(64, 1, 2, 3, 4)
    for changed in [(9, 2, 3, 4), (1, 9, 3, 4), (1, 2, 9, 4), (1, 2, 3, 9)]:
        assert np.mean(ref.random_bits(64, *changed) == base) < 0.1
    np.testing.assert_array_equal(ref.random_bits(10, 1, 2, 3, 4, offset=54), base[54:])
    # Uniform: each of the 32 bits is set in about half of 2**16 words.
    words = ref.random_bits(2**16, 0, 0, 0, 0)
    ones = (words[:, None] >> np.arange(32, dtype=np.uint32)) & 1
    assert np.all(np.abs(ones.mean(axis=0) - 0.5) < 5 * 0.5 / np.sqrt(2**16))


# ------------------------------------------------------------------ 8-bit: blocks and specials
def test_nonfinite_block_dequantizes_to_nan_and_zero_block_to_zero():
    x = np.zeros(64, dtype=np.float32)
    x[16 + 3] = np.nan
    x[32 + 5] = np.inf
    x[48:] = np.linspace(-1, 1, 16, dtype=np.float32)
    for module in (ref, fast):
        q, absmax = module.quantize_blockwise(x, ref.DYNAMIC_SIGNED, 16)
        back = module.dequantize_blockwise(q, absmax, ref.DYNAMIC_SIGNED, 16)
        np.testing.assert_array_equal(back[:16], 0.0)
        assert np.all(np.isnan(back[16:48]))
        assert np.all(np.abs(back[48:] - x[48:]) <= 0.0071)  # half the largest gap, 0.9/64/2
    assert bits32(ref.block_absmax(x, 16))[1] == 0x7FC00000


def test_quantization_error_is_within_half_a_gap():
    rng = np.random.default_rng(4)
    x = rng.standard_normal(4096).astype(np.float32)
    for code, data in ((ref.DYNAMIC_SIGNED, x), (ref.DYNAMIC_UNSIGNED, x * x)):
        q, absmax = fast.quantize_blockwise(data, code, 256)
        back = fast.dequantize_blockwise(q, absmax, code, 256)
        gap = np.max(np.diff(code.astype(np.float64)))
        scale = np.repeat(absmax, 256).astype(np.float64)
        assert np.all(np.abs(back - data) <= (gap / 2 + 1e-6) * scale)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("module", [ref, fast], ids=["reference", "C"])
def test_bad_input_names_the_argument(module):
    x = np.ones(32, dtype=np.float32)
    code = ref.DYNAMIC_SIGNED
    for block_size, error in (
        (0, ValueError),
        (-16, ValueError),
        (17, ValueError),
        (8, ValueError),
        (16.0, TypeError),
        (True, TypeError),
    ):
        with pytest.raises(error, match="block_size"):
            module.quantize_blockwise(x, code, block_size)
    with pytest.raises(TypeError, match="x: expected a numpy float32 array"):
        module.quantize_blockwise(x.astype(np.float64), code, 16)
    with pytest.raises(TypeError, match="x: expected a numpy float32 array"):
        module.to_bfloat16([1.0, 2.0])
    with pytest.raises(ValueError, match="code"):
        module.quantize_blockwise(x, code[:128].copy(), 16)
    with pytest.raises(ValueError, match="code"):
        module.quantize_blockwise(x, code[::-1].copy(), 16)
    q, absmax = module.quantize_blockwise(x, code, 16)
    with pytest.raises(ValueError, match="absmax: expected shape"):
        module.dequantize_blockwise(q, absmax[:1].copy(), code, 16)
    with pytest.raises(TypeError, match="q: expected a numpy uint8 array"):
        module.dequantize_blockwise(q.astype(np.int8), absmax, code, 16)
    with pytest.raises(TypeError, match="bits: expected a numpy uint16 array"):
        module.from_bfloat16(q)
    with pytest.raises(ValueError, match="rounding"):
        module.to_float16(x, "down")
    with pytest.raises(ValueError, match="seed"):
        module.to_bfloat16(x, "stochastic", seed=-1)
    with pytest.raises(TypeError, match="step"):
        module.to_bfloat16(x, "stochastic", step=1.5)


def test_c_bad_input_threads_and_layout():
    x = np.ones(32, dtype=np.float32)
    with pytest.raises(ValueError, match="threads"):
        fast.to_bfloat16(x, threads=0)
    with pytest.raises(ValueError, match="x: expected a C-contiguous array"):
        fast.to_bfloat16(np.ones((4, 8), dtype=np.float32).T)
    with pytest.raises(ValueError, match="q: expected a C-contiguous array"):
        fast.dequantize_blockwise(
            np.zeros(64, np.uint8)[::2], np.ones(2, np.float32), ref.DYNAMIC_SIGNED, 16
        )

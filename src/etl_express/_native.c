/*
 * etl_express._native: the two loops of the anonymized PostgreSQL path that are too hot for
 * Python, run over whole Arrow buffers with the GIL released.
 *
 *   blake2b_tokens(key, digest_size, prefix, offsets, data) -> bytes
 *       For each value of an Arrow string array (int32 offsets, UTF-8 data), the keyed
 *       BLAKE2b digest (RFC 7693, the same bytes as hashlib.blake2b(value, key=key,
 *       digest_size=digest_size)) written as prefix + lowercase hex; tokens are
 *       len(prefix) + 2 * digest_size bytes each, back to back. On x86-64 CPUs with AVX-512F
 *       values of one block (1..128 bytes) are hashed eight at a time, with AVX2 four at a
 *       time, one a vector lane (chosen at run time; blake2b_lanes() says how many, and lowers
 *       it for tests).
 *
 *   phone_e164(offsets, rows, data) -> (offsets, data)
 *       The phone normalization of anonymizers/normalize.py in one pass: keep the ASCII
 *       digits; eleven digits starting with 7 or 8, or ten digits, become "+7" and the ten
 *       national digits; other non-empty digit strings get a "+"; no digits give "".
 *
 *   replace_ascii_emails(offsets, rows, data, placeholder) -> (offsets, data, unsure)
 *       ScrubPII's email rule, [\p{L}\p{N}._%+-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)+ replaced
 *       by the placeholder with RE2's leftmost-greedy semantics, for matches whose every
 *       character and both neighbours are ASCII. A row where a non-ASCII byte touches a
 *       candidate (it could be a letter of \p{L}) is flagged in `unsure` (one byte a row);
 *       the caller runs RE2 on those rows instead.
 *
 *   replace_program(offsets, rows, data, program, first, min_len, placeholder) -> (offsets, data)
 *       A small regular expression, given as a program of alternatives of tokens (a byte class
 *       with a greedy {min,max} count, or an ASCII word boundary \b), replaced by the
 *       placeholder with leftmost-first backtracking semantics, as RE2 replaces it. ScrubPII's
 *       phone rules are such expressions (ASCII only); tests fuzz both against RE2.
 *
 *   scrub_gates(offsets, rows, data[, bitmap]) -> (picked, passport[, special])
 *       Two flags a row for ScrubPII, as RE2 would set them: `picked` matches the prefilter
 *       (?i)@|[0-9][0-9\s()\-]{8,}[0-9]|паспорт|серия|серии|выдан, and `passport` the context
 *       words alone; case-insensitive as RE2's simple case folding (Cyrillic capitals and the
 *       Cyrillic Extended-C letters U+1C80..U+1C85 fold to the small letters). Given
 *       special_rows' bitmap, its flags too, from the same pass over the text.
 *
 *   digit_runs(offsets, rows, data, min_digits) -> flags
 *       One byte a row: whether a run of digits, spaces and dashes holds at least min_digits
 *       digits (every SNILS, card or INN/OGRN candidate of ScrubPII lies in such a run).
 *
 *   merge_rows(offsets, rows, data, picked, new_offsets, new_rows, new_data) -> (offsets, data)
 *       The column with each row flagged in `picked` (one byte a row) replaced by the next row
 *       of the new column: pyarrow.compute.replace_with_mask for strings, in one pass (ScrubPII
 *       writes the rows its rules changed back into the column).
 *
 *   rows_containing(offsets, rows, data, needle) -> flags
 *       One byte a row: whether the value holds the (non-empty) byte string needle, as
 *       pyarrow.compute.match_substring would say (ScrubPII's literal gates: "+", "00", "10").
 *
 *   rows_with_words(offsets, rows, data, words, before) -> flags
 *       One byte a row: whether the value holds one of the NUL-separated words, letters folded
 *       as RE2's (?i) folds them (and ё as е), only before the last occurrence of `before`
 *       when it is given (ScrubPII's gate before its not-PII context patterns).
 *
 *   copy_rows(parts, rows) -> bytes
 *       PostgreSQL binary COPY rows: row i is part_0[i] + part_1[i] + ..., each part one of
 *         ("const", bytes)                      the same bytes in every row (the field count)
 *         ("block", width, buffer)              pre-encoded rows x width bytes
 *         ("var", offsets, data)                pre-encoded variable-length bytes
 *         ("text", offsets, data, validity, bit, prefix)   a string column: length, prefix, bytes
 *         ("int", width, out_width, values, first, validity, bit, delta)  a signed integer column
 *                                               (little-endian) + delta, as a big-endian field
 *         ("bool", values, validity, bit)       an Arrow bit-packed boolean column
 *         ("numeric", width, values, first, validity, bit, scale, ndigits)  unscaled signed
 *                                               integers (little-endian; width 16: decimal128,
 *                                               whose low 8 bytes hold it) as PostgreSQL's
 *                                               binary numeric of ndigits base-10000 digits
 *       A NULL (validity bit 0) is the length -1 and no bytes.
 *
 * blake2b_tokens, phone_e164, replace_ascii_emails, replace_program and merge_rows take an optional last
 * argument, alloc: a callable such that alloc(n) is a writable buffer of at least n bytes
 * (pyarrow.allocate_buffer), which they write their output into and return in place of a new
 * bytes object (a column's data buffer may then be longer than its last offset). Large bytes
 * objects are fresh pages from the system on every call; pyarrow's memory pool reuses its own.
 *
 * The read side (copy_drain, copy_decode: binary COPY from libpq into Arrow buffers) is in
 * _copyread.c.
 *
 * No entry point trusts its caller: every size, offset, bit offset and program is checked
 * against the buffers it indexes, with overflow-checked arithmetic, before the GIL is released;
 * inconsistent arguments raise ValueError (or OverflowError), never read or write out of bounds.
 * tests/native/ calls each entry point with such arguments, and runs the compiled-path tests and
 * a fuzz pass under AddressSanitizer and UndefinedBehaviorSanitizer.
 *
 * Optional: when it is not built (no C compiler), etl_express falls back to hashlib and
 * numpy and produces the same bytes, only slower.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static const uint64_t IV[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL};

static const uint8_t SIGMA[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3}};

#define ROTR64(x, n) (((x) >> (n)) | ((x) << (64 - (n))))
#define G(a, b, c, d, x, y)                 \
    do {                                    \
        v[a] = v[a] + v[b] + (x);           \
        v[d] = ROTR64(v[d] ^ v[a], 32);     \
        v[c] = v[c] + v[d];                 \
        v[b] = ROTR64(v[b] ^ v[c], 24);     \
        v[a] = v[a] + v[b] + (y);           \
        v[d] = ROTR64(v[d] ^ v[a], 16);     \
        v[c] = v[c] + v[d];                 \
        v[b] = ROTR64(v[b] ^ v[c], 63);     \
    } while (0)

/* The twelve BLAKE2b rounds with the mixing function MIX (G on scalar words, GV on four AVX2
   lanes) over the v and m arrays in scope; unrolled, so the SIGMA indices are constants and
   the message words stay in registers. */
#define ROUND(MIX, r)                                      \
    do {                                                   \
        MIX(0, 4, 8, 12, m[SIGMA[r][0]], m[SIGMA[r][1]]);   \
        MIX(1, 5, 9, 13, m[SIGMA[r][2]], m[SIGMA[r][3]]);   \
        MIX(2, 6, 10, 14, m[SIGMA[r][4]], m[SIGMA[r][5]]);  \
        MIX(3, 7, 11, 15, m[SIGMA[r][6]], m[SIGMA[r][7]]);  \
        MIX(0, 5, 10, 15, m[SIGMA[r][8]], m[SIGMA[r][9]]);  \
        MIX(1, 6, 11, 12, m[SIGMA[r][10]], m[SIGMA[r][11]]); \
        MIX(2, 7, 8, 13, m[SIGMA[r][12]], m[SIGMA[r][13]]);  \
        MIX(3, 4, 9, 14, m[SIGMA[r][14]], m[SIGMA[r][15]]);  \
    } while (0)
#define ROUNDS(MIX)                                                                       \
    do {                                                                                  \
        ROUND(MIX, 0); ROUND(MIX, 1); ROUND(MIX, 2); ROUND(MIX, 3); ROUND(MIX, 4);          \
        ROUND(MIX, 5); ROUND(MIX, 6); ROUND(MIX, 7); ROUND(MIX, 8); ROUND(MIX, 9);          \
        ROUND(MIX, 10); ROUND(MIX, 11);                                                   \
    } while (0)

static inline uint64_t load64(const uint8_t *p) {
    return (uint64_t)p[0] | ((uint64_t)p[1] << 8) | ((uint64_t)p[2] << 16) | ((uint64_t)p[3] << 24) |
           ((uint64_t)p[4] << 32) | ((uint64_t)p[5] << 40) | ((uint64_t)p[6] << 48) | ((uint64_t)p[7] << 56);
}

static void compress(uint64_t h[8], const uint8_t block[128], uint64_t t, int last) {
    uint64_t v[16], m[16];
    for (int i = 0; i < 8; i++) {
        v[i] = h[i];
        v[i + 8] = IV[i];
    }
    v[12] ^= t;  /* the counter's high word stays 0: values are far below 2^64 bytes */
    if (last) v[14] = ~v[14];
    for (int i = 0; i < 16; i++) m[i] = load64(block + 8 * i);
    ROUNDS(G);
    for (int i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8];
}

/* The state after the key block, and the digest of the empty message (key block final). */
static void keyed_state(const uint8_t *key, size_t keylen, size_t outlen, uint64_t keyed[8], uint64_t empty[8]) {
    uint8_t block[128];
    uint64_t h[8];
    memcpy(h, IV, sizeof h);
    h[0] ^= 0x01010000ULL ^ ((uint64_t)keylen << 8) ^ (uint64_t)outlen;
    memset(block, 0, sizeof block);
    memcpy(block, key, keylen);
    memcpy(keyed, h, sizeof h);
    compress(keyed, block, 128, 0);
    memcpy(empty, h, sizeof h);
    compress(empty, block, 128, 1);
    memset(block, 0, sizeof block);
}

static void keyed_digest(const uint64_t keyed[8], const uint64_t empty[8], const uint8_t *msg, size_t len,
                         uint64_t h[8]) {
    uint8_t block[128];
    uint64_t t = 128;
    if (len == 0) {
        memcpy(h, empty, 8 * sizeof(uint64_t));
        return;
    }
    memcpy(h, keyed, 8 * sizeof(uint64_t));
    while (len > 128) {
        t += 128;
        compress(h, msg, t, 0);
        msg += 128;
        len -= 128;
    }
    t += len;
    memset(block, 0, sizeof block);
    memcpy(block, msg, len);
    compress(h, block, t, 1);
}


/* n * size + extra as a size, or -1 with OverflowError set when it does not fit. */
static Py_ssize_t checked_size(Py_ssize_t n, Py_ssize_t size, Py_ssize_t extra) {
    Py_ssize_t out;
    if (n < 0 || size < 0 || extra < 0 || __builtin_mul_overflow(n, size, &out) ||
        __builtin_add_overflow(out, extra, &out)) {
        PyErr_SetString(PyExc_OverflowError, "buffer size overflows");
        return -1;
    }
    return out;
}

/* A contiguous, 4-byte aligned buffer of int32 offsets with at least rows + 1 entries, or -1
   with an error set. */
static int get_offsets(PyObject *obj, Py_buffer *view, Py_ssize_t rows) {
    Py_ssize_t need = checked_size(rows, (Py_ssize_t)sizeof(int32_t), (Py_ssize_t)sizeof(int32_t));
    if (need < 0) return -1;
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (view->len < need) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_ValueError, "offsets buffer shorter than rows + 1 int32 values");
        return -1;
    }
    if ((uintptr_t)view->buf % _Alignof(int32_t) != 0) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_ValueError, "offsets buffer is not aligned to 4 bytes");
        return -1;
    }
    return 0;
}

/* Offsets must not decrease and must stay inside the data buffer. */
static int check_offsets(const int32_t *off, Py_ssize_t rows, Py_ssize_t datalen) {
    if (off[0] < 0) return -1;
    for (Py_ssize_t i = 0; i < rows; i++)
        if (off[i + 1] < off[i]) return -1;
    return off[rows] <= datalen ? 0 : -1;
}

/* get_offsets and check_offsets for a string column of `rows` values in `datalen` bytes;
   -1 with an error set and nothing held. */
static int get_column_offsets(PyObject *obj, Py_buffer *view, Py_ssize_t rows, Py_ssize_t datalen) {
    if (rows < 0) {
        PyErr_SetString(PyExc_ValueError, "rows must be >= 0");
        return -1;
    }
    if (get_offsets(obj, view, rows) < 0) return -1;
    if (check_offsets((const int32_t *)view->buf, rows, datalen) < 0) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_ValueError, "offsets out of order or beyond the data buffer");
        return -1;
    }
    return 0;
}

/* An output buffer of n bytes: a new bytes object, or what alloc(n) returns (`alloc` not NULL
   or None), which must be a writable, contiguous buffer of at least n bytes, 4-byte aligned.
   pyarrow.allocate_buffer is such an allocator: its memory pool keeps the pages it frees,
   where a large bytes object is fresh pages from the system on every call, each one faulted
   in and zeroed by the kernel (a third of a scrub's CPU on 50,000-row batches). The object is
   returned and its memory held in *view until the caller releases it; NULL with an error set. */
static PyObject *output_buffer(PyObject *alloc, Py_ssize_t n, Py_buffer *view) {
    if (alloc == NULL || alloc == Py_None) {  /* a new bytes object, written before anyone sees it */
        PyObject *out = PyBytes_FromStringAndSize(NULL, n);
        if (out != NULL && PyBuffer_FillInfo(view, out, PyBytes_AS_STRING(out), n, 0, PyBUF_WRITABLE) < 0)
            Py_CLEAR(out);
        return out;
    }
    PyObject *out = PyObject_CallFunction(alloc, "n", n);
    if (out == NULL) return NULL;
    if (PyObject_GetBuffer(out, view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
        Py_DECREF(out);
        return NULL;
    }
    if (view->len < n || (uintptr_t)view->buf % _Alignof(int32_t) != 0) {
        PyBuffer_Release(view);
        Py_DECREF(out);
        PyErr_SetString(PyExc_ValueError, "alloc(n) must return a writable buffer of at least n bytes, 4-byte aligned");
        return NULL;
    }
    return out;
}

/* The two lowercase hex digits of each byte value, back to back ("00" "01" ... "ff"), filled
   when the module loads (a literal of them reads as a high-entropy secret to secret scanners). */
static char HEX_PAIRS[512];

static void fill_hex_pairs(void) {
    static const char digits[] = "0123456789abcdef";
    for (int b = 0; b < 256; b++) {
        HEX_PAIRS[2 * b] = digits[b >> 4];
        HEX_PAIRS[2 * b + 1] = digits[b & 15];
    }
}

/* prefix + the first digest_size bytes of the digest h as lowercase hex */
static void write_token(uint8_t *dst, const uint8_t *pre, Py_ssize_t plen, const uint64_t h[8], int digest_size) {
    memcpy(dst, pre, (size_t)plen);
    dst += plen;
    for (int j = 0; j < digest_size; j++) {
        uint8_t byte = (uint8_t)(h[j >> 3] >> (8 * (j & 7)));
        memcpy(dst, HEX_PAIRS + 2 * byte, 2);
        dst += 2;
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_BLAKE2B_X4 1

/* Four one-block keyed BLAKE2b digests at once, one message a 64-bit lane of AVX2 registers:
   the rounds of compress() on msgs[k] (1..128 bytes, lens[k]) from the keyed state. */
__attribute__((target("avx2"))) static void keyed_digest_x4(const uint64_t keyed[8], const uint8_t *msgs[],
                                                             const size_t lens[], uint64_t out[][8]) {
    uint8_t blocks[4][128];
    for (int k = 0; k < 4; k++) {
        memset(blocks[k], 0, 128);
        memcpy(blocks[k], msgs[k], lens[k]);
    }
    __m256i m[16], v[16];
    for (int j = 0; j < 16; j++)
        m[j] = _mm256_set_epi64x((long long)load64(blocks[3] + 8 * j), (long long)load64(blocks[2] + 8 * j),
                                 (long long)load64(blocks[1] + 8 * j), (long long)load64(blocks[0] + 8 * j));
    for (int i = 0; i < 8; i++) {
        v[i] = _mm256_set1_epi64x((long long)keyed[i]);
        v[i + 8] = _mm256_set1_epi64x((long long)IV[i]);
    }
    v[12] = _mm256_xor_si256(v[12], _mm256_set_epi64x((long long)(128 + lens[3]), (long long)(128 + lens[2]),
                                                      (long long)(128 + lens[1]), (long long)(128 + lens[0])));
    v[14] = _mm256_xor_si256(v[14], _mm256_set1_epi64x(-1));
    const __m256i rot24 = _mm256_setr_epi8(3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10,
                                           3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10);
    const __m256i rot16 = _mm256_setr_epi8(2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9,
                                           2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9);
#define GV(a, b, c, d, x, y)                                                               \
    do {                                                                                   \
        v[a] = _mm256_add_epi64(_mm256_add_epi64(v[a], v[b]), (x));                        \
        v[d] = _mm256_shuffle_epi32(_mm256_xor_si256(v[d], v[a]), _MM_SHUFFLE(2, 3, 0, 1)); \
        v[c] = _mm256_add_epi64(v[c], v[d]);                                               \
        v[b] = _mm256_shuffle_epi8(_mm256_xor_si256(v[b], v[c]), rot24);                   \
        v[a] = _mm256_add_epi64(_mm256_add_epi64(v[a], v[b]), (y));                        \
        v[d] = _mm256_shuffle_epi8(_mm256_xor_si256(v[d], v[a]), rot16);                   \
        v[c] = _mm256_add_epi64(v[c], v[d]);                                               \
        v[b] = _mm256_xor_si256(v[b], v[c]);                                               \
        v[b] = _mm256_or_si256(_mm256_srli_epi64(v[b], 63), _mm256_add_epi64(v[b], v[b])); \
    } while (0)
    ROUNDS(GV);
#undef GV
    for (int i = 0; i < 8; i++) {
        uint64_t lane[4];
        _mm256_storeu_si256((__m256i *)lane, _mm256_xor_si256(_mm256_set1_epi64x((long long)keyed[i]),
                                                             _mm256_xor_si256(v[i], v[i + 8])));
        for (int k = 0; k < 4; k++) out[k][i] = lane[k];
    }
    memset(blocks, 0, sizeof blocks);
}

/* Eight one-block keyed BLAKE2b digests at once, one message a 64-bit lane of AVX-512
   registers: keyed_digest_x4 with twice the lanes, and the rotations one instruction each. */
__attribute__((target("avx512f"))) static void keyed_digest_x8(const uint64_t keyed[8], const uint8_t *msgs[8],
                                                                const size_t lens[8], uint64_t out[8][8]) {
    uint64_t blocks[8][16];  /* the eight zero-padded blocks, as 16 little-endian words each */
    size_t longest = 0;
    for (int k = 0; k < 8; k++) longest = lens[k] > longest ? lens[k] : longest;
    /* the words past the longest message are zero in every lane: neither padded nor gathered
       (identifiers fill one to four of the sixteen) */
    int words = (int)((longest + 7) / 8);
    for (int k = 0; k < 8; k++) {
        memset(blocks[k], 0, (size_t)words * 8);
        memcpy(blocks[k], msgs[k], lens[k]);  /* x86-64 is little-endian: the words are load64's */
    }
    /* word j of lane k is blocks[k][j]: a gather with a stride of one block */
    const __m512i stride = _mm512_setr_epi64(0, 16, 32, 48, 64, 80, 96, 112);
    __m512i m[16], v[16];
    for (int j = 0; j < 16; j++)
        m[j] = j < words ? _mm512_i64gather_epi64(stride, (const void *)(&blocks[0][j]), 8) : _mm512_setzero_si512();
    for (int i = 0; i < 8; i++) {
        v[i] = _mm512_set1_epi64((long long)keyed[i]);
        v[i + 8] = _mm512_set1_epi64((long long)IV[i]);
    }
    v[12] = _mm512_xor_si512(
        v[12], _mm512_setr_epi64((long long)(128 + lens[0]), (long long)(128 + lens[1]), (long long)(128 + lens[2]),
                                 (long long)(128 + lens[3]), (long long)(128 + lens[4]), (long long)(128 + lens[5]),
                                 (long long)(128 + lens[6]), (long long)(128 + lens[7])));
    v[14] = _mm512_xor_si512(v[14], _mm512_set1_epi64(-1));
#define GV8(a, b, c, d, x, y)                                                  \
    do {                                                                       \
        v[a] = _mm512_add_epi64(_mm512_add_epi64(v[a], v[b]), (x));            \
        v[d] = _mm512_ror_epi64(_mm512_xor_si512(v[d], v[a]), 32);             \
        v[c] = _mm512_add_epi64(v[c], v[d]);                                   \
        v[b] = _mm512_ror_epi64(_mm512_xor_si512(v[b], v[c]), 24);             \
        v[a] = _mm512_add_epi64(_mm512_add_epi64(v[a], v[b]), (y));            \
        v[d] = _mm512_ror_epi64(_mm512_xor_si512(v[d], v[a]), 16);             \
        v[c] = _mm512_add_epi64(v[c], v[d]);                                   \
        v[b] = _mm512_ror_epi64(_mm512_xor_si512(v[b], v[c]), 63);             \
    } while (0)
    ROUNDS(GV8);
#undef GV8
    for (int i = 0; i < 8; i++) {
        uint64_t lane[8];
        _mm512_storeu_si512((void *)lane, _mm512_xor_si512(_mm512_set1_epi64((long long)keyed[i]),
                                                           _mm512_xor_si512(v[i], v[i + 8])));
        for (int k = 0; k < 8; k++) out[k][i] = lane[k];
    }
    for (int k = 0; k < 8; k++) memset(blocks[k], 0, (size_t)words * 8);  /* the values' copies */
}

/* write_token with the hex digits made sixteen bytes at a time (SSSE3 nibble lookups, under the
   AVX2 the lane paths need anyway): the same bytes, two stores a 16-byte digest instead of 16. */
__attribute__((target("avx2"))) static void write_token_simd(uint8_t *dst, const uint8_t *pre, Py_ssize_t plen,
                                                              const uint64_t h[8], int digest_size) {
    memcpy(dst, pre, (size_t)plen);
    dst += plen;
    const uint8_t *bytes = (const uint8_t *)h;  /* x86-64 is little-endian: byte j is write_token's */
    const __m128i digits = _mm_setr_epi8('0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f');
    const __m128i low = _mm_set1_epi8(0x0f);
    int j = 0;
    for (; j + 16 <= digest_size; j += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(bytes + j));
        __m128i hi = _mm_and_si128(_mm_srli_epi16(x, 4), low), lo = _mm_and_si128(x, low);
        _mm_storeu_si128((__m128i *)dst, _mm_shuffle_epi8(digits, _mm_unpacklo_epi8(hi, lo)));
        _mm_storeu_si128((__m128i *)(dst + 16), _mm_shuffle_epi8(digits, _mm_unpackhi_epi8(hi, lo)));
        dst += 32;
    }
    for (; j < digest_size; j++) {
        memcpy(dst, HEX_PAIRS + 2 * bytes[j], 2);
        dst += 2;
    }
}

/* How many values blake2b_tokens hashes at once: 8 (AVX-512F), 4 (AVX2) or 1. -1 until the
   CPU is asked; blake2b_lanes() lowers it for tests. */
static int lanes_setting = -1;
static int cpu_lanes(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? 8 : __builtin_cpu_supports("avx2") ? 4 : 1;
}
static int lanes_enabled(void) {
    if (lanes_setting < 0) lanes_setting = cpu_lanes();
    return lanes_setting;
}
#endif

/* blake2b_lanes(lanes=None) -> int: how many values tokens are hashed at a time, 8 with
   AVX-512, 4 with AVX2, else 1 (chosen from the CPU at run time). An int asks for at most that
   many (the CPU's best at most, for tests of each path); every path gives the same bytes. */
static PyObject *blake2b_lanes(PyObject *self, PyObject *args) {
    PyObject *want_obj = Py_None;
    if (!PyArg_ParseTuple(args, "|O", &want_obj)) return NULL;
    long want = -1;
    if (want_obj != Py_None) {
        want = PyLong_AsLong(want_obj);
        if (want == -1 && PyErr_Occurred()) return NULL;
        if (want < 1) {
            PyErr_SetString(PyExc_ValueError, "lanes must be >= 1");
            return NULL;
        }
    }
#ifdef HAVE_BLAKE2B_X4
    if (want > 0) {
        int best = cpu_lanes();
        lanes_setting = want >= 8 && best >= 8 ? 8 : want >= 4 && best >= 4 ? 4 : 1;
    }
    return PyLong_FromLong(lanes_enabled());
#else
    return PyLong_FromLong(1);
#endif
}

static PyObject *blake2b_tokens(PyObject *self, PyObject *args) {
    Py_buffer key, prefix, offsets_view, data, out_view = {0};
    int digest_size;
    PyObject *offsets_obj, *alloc = NULL;
    Py_ssize_t rows;
    if (!PyArg_ParseTuple(args, "y*iy*Ony*|O", &key, &digest_size, &prefix, &offsets_obj, &rows, &data, &alloc))
        return NULL;
    PyObject *out = NULL;
    if (key.len < 1 || key.len > 64 || digest_size < 1 || digest_size > 64 || rows < 0) {
        PyErr_SetString(PyExc_ValueError, "key must be 1..64 bytes, digest_size 1..64, rows >= 0");
        goto done_no_offsets;
    }
    if (get_column_offsets(offsets_obj, &offsets_view, rows, data.len) < 0) goto done_no_offsets;
    const int32_t *off = (const int32_t *)offsets_view.buf;
    Py_ssize_t width = checked_size(2, digest_size, prefix.len), total = checked_size(rows, width, 0);
    if (width < 0 || total < 0) goto done;
    out = output_buffer(alloc, total, &out_view);
    if (out == NULL) goto done;
    {
        uint8_t *dst = (uint8_t *)out_view.buf;
        const uint8_t *src = (const uint8_t *)data.buf;
        const uint8_t *pre = (const uint8_t *)prefix.buf;
        Py_ssize_t plen = prefix.len;
        uint64_t keyed[8], empty[8], h[8];
        Py_BEGIN_ALLOW_THREADS
        keyed_state((const uint8_t *)key.buf, (size_t)key.len, (size_t)digest_size, keyed, empty);
        Py_ssize_t i = 0;
#ifdef HAVE_BLAKE2B_X4
        int lanes = lanes_enabled();
        if (lanes > 1) {
            /* one-block values `lanes` at a time; the others (empty, over 128 bytes) one by one */
            Py_ssize_t lane_row[8];
            const uint8_t *msgs[8];
            size_t lens[8];
            uint64_t hs[8][8];
            int n = 0;
            for (; i < rows; i++) {
                size_t len = (size_t)(off[i + 1] - off[i]);
                if (len == 0 || len > 128) {
                    keyed_digest(keyed, empty, src + off[i], len, h);
                    write_token(dst + i * width, pre, plen, h, digest_size);
                    continue;
                }
                lane_row[n] = i;
                msgs[n] = src + off[i];
                lens[n] = len;
                if (++n == lanes) {
                    if (lanes == 8)
                        keyed_digest_x8(keyed, msgs, lens, hs);
                    else
                        keyed_digest_x4(keyed, msgs, lens, hs);
                    for (int k = 0; k < n; k++) write_token_simd(dst + lane_row[k] * width, pre, plen, hs[k], digest_size);
                    n = 0;
                }
            }
            for (int k = 0; k < n; k++) {
                keyed_digest(keyed, empty, msgs[k], lens[k], h);
                write_token(dst + lane_row[k] * width, pre, plen, h, digest_size);
            }
            memset(hs, 0, sizeof hs);
        }
#endif
        for (; i < rows; i++) {
            keyed_digest(keyed, empty, src + off[i], (size_t)(off[i + 1] - off[i]), h);
            write_token(dst + i * width, pre, plen, h, digest_size);
        }
        memset(keyed, 0, sizeof keyed);
        memset(empty, 0, sizeof empty);
        memset(h, 0, sizeof h);
        Py_END_ALLOW_THREADS
    }
done:
    if (out_view.obj != NULL) PyBuffer_Release(&out_view);
    PyBuffer_Release(&offsets_view);
done_no_offsets:
    PyBuffer_Release(&key);
    PyBuffer_Release(&prefix);
    PyBuffer_Release(&data);
    return out;
}

/* Room for the values after replacing matches of at least min_len (>= 1) bytes by ph_len
   bytes; -1 with OverflowError set when it does not fit. */
static Py_ssize_t replaced_bound(const int32_t *off, Py_ssize_t rows, Py_ssize_t min_len, Py_ssize_t ph_len) {
    Py_ssize_t growth = ph_len > min_len ? ph_len - min_len : 0, bound = 0;
    for (Py_ssize_t i = 0; i < rows; i++) {
        Py_ssize_t len = off[i + 1] - off[i], extra;
        if (__builtin_mul_overflow(len / min_len + 1, growth, &extra) || __builtin_add_overflow(bound, len, &bound) ||
            __builtin_add_overflow(bound, extra, &bound)) {
            PyErr_SetString(PyExc_OverflowError, "replaced column size overflows");
            return -1;
        }
    }
    return bound;
}

/* New int32 offsets (rows + 1) and a data buffer of `bound` bytes for a string column (see
   output_buffer), their memory held in the views; -1 with an error set (the caller releases
   whatever was allocated: objects not NULL, views whose obj is not NULL). */
static int new_string_buffers(Py_ssize_t rows, Py_ssize_t bound, PyObject *alloc, PyObject **offsets,
                              Py_buffer *offsets_view, PyObject **data, Py_buffer *data_view) {
    if (bound < 0) return -1;  /* replaced_bound set the error */
    if (bound > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "column too large for 32-bit offsets");
        return -1;
    }
    Py_ssize_t offsets_len = checked_size(rows, (Py_ssize_t)sizeof(int32_t), (Py_ssize_t)sizeof(int32_t));
    if (offsets_len < 0) return -1;
    if ((*offsets = output_buffer(alloc, offsets_len, offsets_view)) == NULL) return -1;
    if ((*data = output_buffer(alloc, bound, data_view)) == NULL) return -1;
    return 0;
}

/* Rewrites one value into dst and returns the bytes written; -1: the function is unsure, the
   value is copied unchanged and its row flagged (the caller redoes it another way). */
typedef Py_ssize_t (*ValueFn)(const uint8_t *t, Py_ssize_t n, uint8_t *dst, const void *ctx);

/* A new string column from the `rows` values at off/src, each rewritten by fn into at most
   `bound` bytes in all: (offsets, data), or (offsets, data, unsure flags) with `with_flags`.
   The offsets and data are bytes objects, or buffers from `alloc` (see output_buffer), of
   which the data is longer than the values (its used length is the last offset). Runs
   without the GIL. */
static PyObject *map_strings(const int32_t *off, Py_ssize_t rows, const uint8_t *src, Py_ssize_t bound, ValueFn fn,
                             const void *ctx, int with_flags, PyObject *alloc) {
    PyObject *out_offsets = NULL, *out_data = NULL, *flags = NULL, *result = NULL;
    Py_buffer offsets_view = {0}, data_view = {0};
    if (new_string_buffers(rows, bound, alloc, &out_offsets, &offsets_view, &out_data, &data_view) < 0) goto done;
    if (with_flags && (flags = PyBytes_FromStringAndSize(NULL, rows)) == NULL) goto done;
    {
        int32_t *o = (int32_t *)offsets_view.buf;
        uint8_t *dst = (uint8_t *)data_view.buf;
        uint8_t *unsure = flags != NULL ? (uint8_t *)PyBytes_AS_STRING(flags) : NULL;
        Py_ssize_t pos = 0;
        Py_BEGIN_ALLOW_THREADS
        o[0] = 0;
        for (Py_ssize_t i = 0; i < rows; i++) {
            const uint8_t *t = src + off[i];
            Py_ssize_t n = off[i + 1] - off[i], w = fn(t, n, dst + pos, ctx);
            if (unsure != NULL) unsure[i] = w < 0;
            if (w < 0) {
                memcpy(dst + pos, t, n);
                w = n;
            }
            pos += w;
            o[i + 1] = (int32_t)pos;
        }
        Py_END_ALLOW_THREADS
        PyBuffer_Release(&data_view);
        if (PyBytes_CheckExact(out_data) && _PyBytes_Resize(&out_data, pos) < 0) goto done;
    }
    result = flags != NULL ? PyTuple_Pack(3, out_offsets, out_data, flags) : PyTuple_Pack(2, out_offsets, out_data);
done:
    if (offsets_view.obj != NULL) PyBuffer_Release(&offsets_view);
    if (data_view.obj != NULL) PyBuffer_Release(&data_view);
    Py_XDECREF(out_offsets);
    Py_XDECREF(out_data);
    Py_XDECREF(flags);
    return result;
}

/* E.164 of one phone: the digits are gathered two bytes after dst, leaving room for "+7".
   -1 (the value is copied and flagged): not a number these rules know, for libphonenumber to
   read: a '+' before a country code other than 7 (or before a +7 number that is not eleven
   digits), or an international prefix (00, or Russia's 8 10) before the digits. */
static Py_ssize_t phone_value(const uint8_t *t, Py_ssize_t len, uint8_t *dst, const void *ctx) {
    (void)ctx;
    uint8_t *d = dst + 2;
    Py_ssize_t n = 0;
    int plus = 0;
    for (Py_ssize_t j = 0; j < len; j++) {
        if (t[j] >= '0' && t[j] <= '9') d[n++] = t[j];
        else if (t[j] == '+' && n == 0) plus = 1;
    }
    if (n == 0) return 0;
    if (plus && !(n == 11 && d[0] == '7')) return -1;
    if (!plus && n >= 3 && (d[0] == '0' && d[1] == '0')) return -1;
    if (!plus && n > 11 && d[0] == '8' && d[1] == '1' && d[2] == '0') return -1;
    if (n == 11 && (d[0] == '7' || d[0] == '8')) {
        dst[0] = '+';
        dst[1] = '7';
        memmove(dst + 2, d + 1, 10);
        return 12;
    }
    if (n == 10) {
        dst[0] = '+';
        dst[1] = '7';
        return 12;
    }
    dst[0] = '+';
    memmove(dst + 1, d, n);
    return n + 1;
}

static PyObject *phone_e164(PyObject *self, PyObject *args) {
    PyObject *offsets_obj, *result, *alloc = NULL;
    Py_ssize_t rows;
    Py_buffer offsets_view, data;
    if (!PyArg_ParseTuple(args, "Ony*|O", &offsets_obj, &rows, &data, &alloc)) return NULL;
    if (get_column_offsets(offsets_obj, &offsets_view, rows, data.len) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    const int32_t *off = (const int32_t *)offsets_view.buf;
    /* a value grows by at most two bytes ("+7" before ten digits); the digits are gathered
       two bytes after the value's start, so two more bytes of room cover the last one */
    Py_ssize_t bound = checked_size(rows, 2, (Py_ssize_t)(off[rows] - off[0]) + 2);
    result = bound < 0 ? NULL : map_strings(off, rows, data.buf, bound, phone_value, NULL, 1, alloc);
    PyBuffer_Release(&offsets_view);
    PyBuffer_Release(&data);
    return result;
}

static inline int email_local(uint8_t c) {  /* [\p{L}\p{N}._%+-] on ASCII */
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '%' || c == '+' || c == '-';
}

static inline int email_domain(uint8_t c) {  /* [\p{L}\p{N}-] on ASCII */
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

/* Replace the emails of one value t[0..n) into dst; returns the bytes written, or -1 when a
   non-ASCII byte touches a candidate (the caller falls back to RE2 for this value). */
static Py_ssize_t emails_in_value(const uint8_t *t, Py_ssize_t n, const uint8_t *ph, Py_ssize_t phlen, uint8_t *dst) {
    Py_ssize_t p = 0, w = 0; /* p: where the next match may start (end of the previous one) */
    for (Py_ssize_t a = 0; a < n; a++) {
        const uint8_t *at = memchr(t + a, '@', (size_t)(n - a)); /* every match holds an '@' */
        if (at == NULL) break;
        a = at - t;
        /* the local part: the run of local characters before '@', not before p */
        Py_ssize_t s = a;
        while (s > p && email_local(t[s - 1])) s--;
        if (s > p && t[s - 1] >= 0x80) return -1;
        if (s == a) continue;  /* empty local part: no match through this '@' */
        /* the domain: label (. label)+, labels greedy */
        Py_ssize_t j = a + 1;
        while (j < n && email_domain(t[j])) j++;
        if (j < n && t[j] >= 0x80) return -1;
        if (j == a + 1) continue;
        Py_ssize_t end = -1;
        while (j + 1 < n && t[j] == '.' && email_domain(t[j + 1])) {
            j += 1;
            while (j < n && email_domain(t[j])) j++;
            if (j < n && t[j] >= 0x80) return -1;
            end = j;
        }
        if (j + 1 < n && t[j] == '.' && t[j + 1] >= 0x80) return -1;
        if (end < 0) continue;
        memcpy(dst + w, t + p, s - p);
        w += s - p;
        memcpy(dst + w, ph, phlen);
        w += phlen;
        p = end;
        a = end - 1;
    }
    memcpy(dst + w, t + p, n - p);
    return w + (n - p);
}

typedef struct {
    const uint8_t *ph;
    Py_ssize_t phlen;
} Placeholder;

static Py_ssize_t email_value(const uint8_t *t, Py_ssize_t n, uint8_t *dst, const void *ctx) {
    const Placeholder *ph = ctx;
    if (memchr(t, '@', n) == NULL) {
        memcpy(dst, t, n);
        return n;
    }
    return emails_in_value(t, n, ph->ph, ph->phlen, dst);
}

static PyObject *replace_ascii_emails(PyObject *self, PyObject *args) {
    PyObject *offsets_obj, *result, *alloc = NULL;
    Py_ssize_t rows;
    Py_buffer offsets_view, data, ph;
    if (!PyArg_ParseTuple(args, "Ony*y*|O", &offsets_obj, &rows, &data, &ph, &alloc)) return NULL;
    result = NULL;
    if (get_column_offsets(offsets_obj, &offsets_view, rows, data.len) == 0) {
        const int32_t *off = (const int32_t *)offsets_view.buf;
        Placeholder ctx = {ph.buf, ph.len};
        /* an email is at least "a@b.c": 5 bytes */
        result = map_strings(off, rows, data.buf, replaced_bound(off, rows, 5, ph.len), email_value, &ctx, 1, alloc);
        PyBuffer_Release(&offsets_view);
    }
    PyBuffer_Release(&data);
    PyBuffer_Release(&ph);
    return result;
}

typedef struct {
    uint8_t kind; /* 0: a byte class {min,max}; 1: ASCII word boundary */
    uint8_t min, max;
    uint8_t cls[32];
} Token;

typedef struct {
    int count;
    const Token *tokens;
} Alternative;

static inline int in_class(const uint8_t *cls, uint8_t c) { return (cls[c >> 3] >> (c & 7)) & 1; }

static inline int word_byte(uint8_t c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* The end of a match of tokens[i..] at pos, greedy with backtracking; -1 when none. A token
   that can take only one count here (a fixed count, or an optional byte that is absent) is
   no choice point: the loop goes on to the next token without a recursive call. */
static Py_ssize_t match_tokens(const Token *tokens, int count, int i, const uint8_t *t, Py_ssize_t n, Py_ssize_t pos) {
    for (; i < count; i++) {
        const Token *k = &tokens[i];
        if (k->kind == 1) {
            int before = pos > 0 && word_byte(t[pos - 1]);
            int after = pos < n && word_byte(t[pos]);
            if (before == after) return -1;
            continue;
        }
        int got = 0;
        while (got < k->max && pos + got < n && in_class(k->cls, t[pos + got])) got++;
        if (got < k->min) return -1;
        if (got > k->min) {  /* the longest count first, then shorter ones */
            for (int c = got; c >= k->min; c--) {
                Py_ssize_t end = match_tokens(tokens, count, i + 1, t, n, pos + c);
                if (end >= 0) return end;
            }
            return -1;
        }
        pos += got;
    }
    return pos;
}

#define MAX_ALTERNATIVES 8
#define TOKEN_BYTES 35

/* The fewest bytes a match of the program takes (at least 1: an empty match is no match). */
static Py_ssize_t program_min_len(const Alternative *alts, int nalts) {
    Py_ssize_t shortest = PY_SSIZE_T_MAX;
    for (int a = 0; a < nalts; a++) {
        Py_ssize_t len = 0;
        for (int i = 0; i < alts[a].count; i++)
            if (alts[a].tokens[i].kind == 0) len += alts[a].tokens[i].min;
        if (len < shortest) shortest = len;
    }
    return shortest > 1 ? shortest : 1;
}

/* Parse "count, then per alternative: token count, tokens of TOKEN_BYTES"; 0 or -1. */
static int parse_program(const uint8_t *prog, Py_ssize_t len, Alternative *alts, int *nalts) {
    if (len < 1 || prog[0] < 1 || prog[0] > MAX_ALTERNATIVES) return -1;
    *nalts = prog[0];
    Py_ssize_t at = 1;
    for (int a = 0; a < *nalts; a++) {
        if (at >= len) return -1;
        alts[a].count = prog[at++];
        if (alts[a].count < 1 || at + (Py_ssize_t)alts[a].count * TOKEN_BYTES > len) return -1;
        alts[a].tokens = (const Token *)(prog + at);
        for (int i = 0; i < alts[a].count; i++) {
            const Token *k = &alts[a].tokens[i];
            if (k->kind > 1 || k->min > k->max) return -1;
        }
        at += (Py_ssize_t)alts[a].count * TOKEN_BYTES;
    }
    return at == len ? 0 : -1;
}

typedef struct {
    const Alternative *alts;
    int nalts;
    Py_ssize_t min_digits; /* the fewest ASCII digits a match holds (program_min_digits) */
    uint8_t starts[256]; /* 1 for the bytes a match can start with (the first-byte class, unpacked) */
    int only;            /* the one byte in `starts` when it holds one (the "+" of "+7"), else -1 */
    int ascii_starts;    /* every byte in `starts` is ASCII: runs of non-ASCII bytes are skipped whole */
    Placeholder ph;
} Program;

/* The one byte a 256-bit class holds, or -1 when it holds none or several. */
static int only_byte(const uint8_t *cls) {
    int found = -1;
    for (int c = 0; c < 256; c++)
        if (in_class(cls, (uint8_t)c)) {
            if (found >= 0) return -1;
            found = c;
        }
    return found;
}

/* The first position at or after s where a match can start (n when none): memchr for a
   one-byte class, else a table lookup a byte, with eight non-ASCII bytes (Cyrillic text)
   skipped at a time when no match starts with one. */
static inline Py_ssize_t next_start(const Program *pg, const uint8_t *t, Py_ssize_t n, Py_ssize_t s) {
    if (pg->only >= 0) {
        const uint8_t *next = memchr(t + s, pg->only, (size_t)(n - s));
        return next != NULL ? next - t : n;
    }
    while (s < n) {
        if (pg->ascii_starts) {
            for (uint64_t w; s + 8 <= n; s += 8) {
                memcpy(&w, t + s, 8);
                if ((w & 0x8080808080808080ULL) != 0x8080808080808080ULL) break;
            }
            if (s >= n) break;
        }
        if (pg->starts[t[s]]) return s;
        s++;
    }
    return n;
}

/* The fewest ASCII digits a match of the program holds: per alternative, the least counts of
   its classes of digits only (a phone rule's ten or eleven). */
static Py_ssize_t program_min_digits(const Alternative *alts, int nalts) {
    Py_ssize_t fewest = PY_SSIZE_T_MAX;
    for (int a = 0; a < nalts; a++) {
        Py_ssize_t digits = 0;
        for (int i = 0; i < alts[a].count; i++) {
            const Token *k = &alts[a].tokens[i];
            int only_digits = k->kind == 0;
            for (int c = 0; c < 256 && only_digits; c++)
                if (in_class(k->cls, (uint8_t)c) && !(c >= '0' && c <= '9')) only_digits = 0;
            if (only_digits) digits += k->min;
        }
        if (digits < fewest) fewest = digits;
    }
    return fewest;
}

static Py_ssize_t program_value(const uint8_t *t, Py_ssize_t n, uint8_t *dst, const void *ctx) {
    const Program *pg = ctx;
    Py_ssize_t p = 0, s = 0, w = 0;
    if (pg->only < 0 && pg->min_digits > 0) {  /* a value with too few digits for any match: copied */
        Py_ssize_t digits = 0;
        for (Py_ssize_t j = 0; j < n; j++) digits += (uint8_t)(t[j] - '0') < 10; /* vectorized */
        if (digits < pg->min_digits) {
            memcpy(dst, t, n);
            return n;
        }
    }
    while ((s = next_start(pg, t, n, s)) < n) {
        Py_ssize_t end = -1;
        for (int a = 0; a < pg->nalts && end < 0; a++)
            end = match_tokens(pg->alts[a].tokens, pg->alts[a].count, 0, t, n, s);
        if (end <= s) {  /* no match here (patterns never match empty) */
            s++;
            continue;
        }
        memcpy(dst + w, t + p, s - p);
        w += s - p;
        memcpy(dst + w, pg->ph.ph, pg->ph.phlen);
        w += pg->ph.phlen;
        p = s = end;
    }
    memcpy(dst + w, t + p, n - p);
    return w + (n - p);
}

static PyObject *replace_program(PyObject *self, PyObject *args) {
    PyObject *offsets_obj, *result = NULL, *alloc = NULL;
    Py_ssize_t rows, min_len;
    Py_buffer offsets_view, data, prog, first, ph;
    if (!PyArg_ParseTuple(args, "Ony*y*y*ny*|O", &offsets_obj, &rows, &data, &prog, &first, &min_len, &ph, &alloc))
        return NULL;
    Alternative alts[MAX_ALTERNATIVES];
    int nalts = 0;
    if (sizeof(Token) != TOKEN_BYTES || parse_program(prog.buf, prog.len, alts, &nalts) < 0 || first.len != 32 ||
        min_len < 1 || rows < 0) {
        PyErr_SetString(PyExc_ValueError, "malformed program, first-byte class, min_len or rows");
    } else if (min_len > program_min_len(alts, nalts)) {
        /* the output is sized for matches of at least min_len bytes: a shorter one would overrun it */
        PyErr_Format(PyExc_ValueError, "min_len %zd is longer than the program's shortest match (%zd bytes)", min_len,
                     program_min_len(alts, nalts));
    } else if (get_column_offsets(offsets_obj, &offsets_view, rows, data.len) == 0) {
        const int32_t *off = (const int32_t *)offsets_view.buf;
        Program ctx = {alts, nalts, program_min_digits(alts, nalts), {0}, only_byte(first.buf), 1, {ph.buf, ph.len}};
        for (int c = 0; c < 256; c++) {
            ctx.starts[c] = (uint8_t)in_class(first.buf, (uint8_t)c);
            if (c >= 0x80 && ctx.starts[c]) ctx.ascii_starts = 0;
        }
        result = map_strings(off, rows, data.buf, replaced_bound(off, rows, min_len, ph.len), program_value, &ctx, 0, alloc);
        PyBuffer_Release(&offsets_view);
    }
    PyBuffer_Release(&data);
    PyBuffer_Release(&prog);
    PyBuffer_Release(&first);
    PyBuffer_Release(&ph);
    return result;
}

/* A code point folded as RE2's (?i) folds the letters of ScrubPII's context words. */
static inline uint32_t fold_cyrillic(uint32_t cp) {
    if (cp >= 0x410 && cp <= 0x42F) return cp + 0x20;
    switch (cp) {
        case 0x1C80: return 0x432;
        case 0x1C81: return 0x434;
        case 0x1C82: return 0x43E;
        case 0x1C83: return 0x441;
        case 0x1C84:
        case 0x1C85: return 0x442;
        default: return cp;
    }
}

/* The next code point of valid UTF-8 at t[*i] (Arrow strings are valid UTF-8). */
static inline uint32_t next_cp(const uint8_t *t, Py_ssize_t n, Py_ssize_t *i) {
    uint8_t c = t[*i];
    if (c < 0x80 || *i + 1 >= n) { *i += 1; return c; }
    if (c < 0xE0) { uint32_t cp = ((uint32_t)(c & 0x1F) << 6) | (t[*i + 1] & 0x3F); *i += 2; return cp; }
    if (c < 0xF0 && *i + 2 < n) {
        uint32_t cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(t[*i + 1] & 0x3F) << 6) | (t[*i + 2] & 0x3F);
        *i += 3;
        return cp;
    }
    *i += c < 0xF0 ? 3 : 4;
    return 0xFFFD;  /* beyond the BMP: never one of the letters */
}

static const uint32_t W_PASPORT[] = {0x43F, 0x430, 0x441, 0x43F, 0x43E, 0x440, 0x442};  /* паспорт */
static const uint32_t W_SERIYA[] = {0x441, 0x435, 0x440, 0x438, 0x44F};                 /* серия */
static const uint32_t W_SERII[] = {0x441, 0x435, 0x440, 0x438, 0x438};                  /* серии */
static const uint32_t W_VYDAN[] = {0x432, 0x44B, 0x434, 0x430, 0x43D};                  /* выдан */

static int has_word(const uint32_t *cps, Py_ssize_t m, const uint32_t *w, Py_ssize_t wl) {
    for (Py_ssize_t i = 0; i + wl <= m; i++) {
        Py_ssize_t k = 0;
        while (k < wl && cps[i + k] == w[k]) k++;
        if (k == wl) return 1;
    }
    return 0;
}

/* The same test on UTF-8 bytes, for text without U+1C80..U+1C85 (no 0xE1 lead byte): every
   letter of the words is two bytes, small or capital, so a word is a run of byte pairs. */
static int has_word_utf8(const uint8_t *t, Py_ssize_t n, const uint32_t *w, Py_ssize_t wl, Py_ssize_t i) {
    if (i + 2 * wl > n) return 0;
    for (Py_ssize_t k = 0; k < wl; k++) {
        uint32_t cp = ((uint32_t)(t[i + 2 * k] & 0x1F) << 6) | (t[i + 2 * k + 1] & 0x3F);
        if ((t[i + 2 * k] & 0xE0) != 0xC0 || fold_cyrillic(cp) != w[k]) return 0;
    }
    return 1;
}

static inline uint32_t utf8_at(const uint8_t *t, Py_ssize_t n, Py_ssize_t *i);

/* Which lead bytes start a sequence whose code point may be set in the bitmap of bits_len
   bytes (special_rows and scrub_gates' third flag). */
static void special_leads(const uint8_t *bm, Py_ssize_t bits_len, uint8_t lead[256]) {
    uint64_t limit = (uint64_t)bits_len * 8;
    memset(lead, 0, 256);
    for (uint64_t cp = 0x80; cp < limit && cp < 0x110000; cp++) {
        if (!((bm[cp >> 3] >> (cp & 7)) & 1)) continue;
        lead[cp < 0x800 ? 0xC0 | (cp >> 6) : cp < 0x10000 ? 0xE0 | (cp >> 12) : 0xF0 | (cp >> 18)] = 1;
    }
}

static PyObject *scrub_gates(PyObject *self, PyObject *args) {
    PyObject *offsets_obj;
    Py_ssize_t rows;
    Py_buffer offsets_view, data, bits = {0};
    if (!PyArg_ParseTuple(args, "Ony*|y*", &offsets_obj, &rows, &data, &bits)) return NULL;
    int with_special = bits.obj != NULL;
    if (get_column_offsets(offsets_obj, &offsets_view, rows, data.len) < 0) {
        PyBuffer_Release(&data);
        if (with_special) PyBuffer_Release(&bits);
        return NULL;
    }
    const int32_t *off = (const int32_t *)offsets_view.buf;
    PyObject *picked = PyBytes_FromStringAndSize(NULL, rows), *passport = PyBytes_FromStringAndSize(NULL, rows);
    PyObject *special = with_special ? PyBytes_FromStringAndSize(NULL, rows) : NULL;
    Py_ssize_t longest = 0;
    for (Py_ssize_t i = 0; i < rows; i++)
        if (off[i + 1] - off[i] > longest) longest = off[i + 1] - off[i];
    uint32_t *cps = PyMem_Calloc((size_t)(longest ? longest : 1), sizeof(uint32_t));
    PyObject *result = NULL;
    if (picked == NULL || passport == NULL || cps == NULL || (with_special && special == NULL)) {
        if (cps == NULL) PyErr_NoMemory();
        goto done;
    }
    {
        uint8_t *pk = (uint8_t *)PyBytes_AS_STRING(picked), *pp = (uint8_t *)PyBytes_AS_STRING(passport);
        uint8_t *sp = with_special ? (uint8_t *)PyBytes_AS_STRING(special) : NULL;
        const uint8_t *src = (const uint8_t *)data.buf, *bm = with_special ? (const uint8_t *)bits.buf : NULL;
        uint64_t limit = with_special ? (uint64_t)bits.len * 8 : 0;
        uint8_t lead[256];
        if (with_special)
            special_leads(bm, bits.len, lead);
        else
            memset(lead, 0, sizeof lead);
        /* the context word that may start at a letter D0 xx or D1 xx, by (lead & 1) << 6 | (xx &
           0x3F), the letter's code point less 0x400: 1 паспорт, 2 серия or серии, 3 выдан, 0 none
           (its first letter folded as RE2 folds it); one lookup a Cyrillic letter */
        uint8_t first_word[128];
        for (uint32_t k = 0; k < 128; k++) {
            uint32_t folded = fold_cyrillic(0x400 + k);
            first_word[k] = folded == W_PASPORT[0] ? 1 : folded == W_SERIYA[0] ? 2 : folded == W_VYDAN[0] ? 3 : 0;
        }
        /* a Cyrillic letter that starts no context word still sought is nothing but a reset of
           the digit counts, unless special code points share its lead byte: then a run of them
           is skipped in a tight loop (the same as the byte-by-byte walk, which skips the
           continuation byte after its lead) */
        int plain_cyrillic = !lead[0xD0] && !lead[0xD1];
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t r = 0; r < rows; r++) {
            const uint8_t *t = src + off[r];
            Py_ssize_t n = off[r + 1] - off[r], digits = 0, plus_digits = -1, m = 0;
            int hit = memchr(t, '@', n) != NULL, found_special = 0;
            int extended_c = memchr(t, 0xE1, n) != NULL, context = 0;
            /* One pass for the three flags. [0-9](?:[\s().\-]*[0-9]){9} or
               \+[\s().\-]*[0-9](?:[\s().\-]*[0-9]){6}: plus_digits counts the digits since the
               last '+' (-1: none since a byte that breaks the run); the context words, byte
               pairs (without U+1C80..U+1C85, compared as code points below); the special code
               points, decoded where their lead byte says they may be. */
            for (Py_ssize_t i = 0; i < n;) {
                uint8_t c = t[i];
                if (c < 0x80) {
                    if (hit) {  /* picked already: ASCII says nothing more, skipped eight bytes at a time */
                        i++;
                        for (uint64_t w; i + 8 <= n; i += 8) {
                            memcpy(&w, t + i, 8);
                            if (w & 0x8080808080808080ULL) break;
                        }
                        while (i < n && t[i] < 0x80) i++;
                        continue;
                    } else if (c >= '0' && c <= '9') {
                        hit = ++digits >= 10 || (plus_digits >= 0 && ++plus_digits >= 7);
                    } else if (c == '+') {
                        digits = 0;
                        plus_digits = 0;
                    } else if (!(c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' || c == '(' ||
                                 c == ')' || c == '-' || c == '.')) {
                        digits = 0;
                        plus_digits = -1;
                    }
                    i++;
                    continue;
                }
                digits = 0;
                plus_digits = -1;
                if (plain_cyrillic) {  /* Cyrillic letters that start no context word still sought: two bytes a step */
                    Py_ssize_t from = i;
                    int words_known = context || extended_c;
                    while (i + 1 < n && (t[i] & 0xFE) == 0xD0 && (t[i + 1] & 0xC0) == 0x80 &&
                           (words_known || !first_word[((t[i] & 1) << 6) | (t[i + 1] & 0x3F)]))
                        i += 2;
                    if (i != from) continue;
                }
                int settled = 0; /* a flag was just set: maybe all three are known */
                if ((c == 0xD0 || c == 0xD1) && !context && !extended_c && i + 1 < n) {
                    uint8_t word = first_word[((c & 1) << 6) | (t[i + 1] & 0x3F)];
                    settled = context = word != 0 && (word == 1   ? has_word_utf8(t, n, W_PASPORT, 7, i)
                                                      : word == 2 ? has_word_utf8(t, n, W_SERIYA, 5, i) ||
                                                                        has_word_utf8(t, n, W_SERII, 5, i)
                                                                  : has_word_utf8(t, n, W_VYDAN, 5, i));
                }
                if (lead[c] && !found_special) {
                    Py_ssize_t j = i;
                    uint32_t cp = utf8_at(t, n, &j);
                    settled |= found_special = cp < limit && ((bm[cp >> 3] >> (cp & 7)) & 1);
                }
                if (settled && hit && (context || extended_c) && (found_special || !with_special)) break;
                i++;
                while (i < n && (t[i] & 0xC0) == 0x80) i++;  /* continuation bytes: they only reset the
                                                                 counts, as the byte before did */
            }
            if (extended_c) {  /* U+1C80..U+1C85 fold to letters of the words: compare code points */
                for (Py_ssize_t i = 0; i < n;) cps[m++] = fold_cyrillic(next_cp(t, n, &i));
                context = has_word(cps, m, W_PASPORT, 7) || has_word(cps, m, W_SERIYA, 5) ||
                          has_word(cps, m, W_SERII, 5) || has_word(cps, m, W_VYDAN, 5);
            }
            pk[r] = (uint8_t)(hit || context);
            pp[r] = (uint8_t)context;
            if (with_special) sp[r] = (uint8_t)found_special;
        }
        Py_END_ALLOW_THREADS
    }
    result = with_special ? PyTuple_Pack(3, picked, passport, special) : PyTuple_Pack(2, picked, passport);
done:
    Py_XDECREF(picked);
    Py_XDECREF(passport);
    Py_XDECREF(special);
    PyMem_Free(cps);
    PyBuffer_Release(&offsets_view);
    PyBuffer_Release(&data);
    if (with_special) PyBuffer_Release(&bits);
    return result;
}

static PyObject *digit_runs(PyObject *self, PyObject *args) {
    PyObject *offsets_obj;
    Py_ssize_t rows, min_digits;
    Py_buffer offsets_view, data;
    if (!PyArg_ParseTuple(args, "Ony*n", &offsets_obj, &rows, &data, &min_digits)) return NULL;
    if (get_column_offsets(offsets_obj, &offsets_view, rows, data.len) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    const int32_t *off = (const int32_t *)offsets_view.buf;
    PyObject *flags = PyBytes_FromStringAndSize(NULL, rows);
    if (flags != NULL) {
        uint8_t *f = (uint8_t *)PyBytes_AS_STRING(flags);
        const uint8_t *src = (const uint8_t *)data.buf;
        /* a digit adds one to the run, a space or a dash keeps it, any other byte ends it:
           (digits + add[c]) & keep[c], without a branch a byte */
        Py_ssize_t add[256], keep[256], need = min_digits > 1 ? min_digits : 1; /* as "++digits >= min_digits" */
        for (int c = 0; c < 256; c++) {
            add[c] = c >= '0' && c <= '9';
            keep[c] = add[c] || c == ' ' || c == '-' ? -1 : 0;
        }
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t r = 0; r < rows; r++) {
            const uint8_t *p = src + off[r], *end = src + off[r + 1];
            Py_ssize_t digits = 0, total = 0;
            for (const uint8_t *q = p; q < end; q++) total += (uint8_t)(*q - '0') < 10; /* vectorized */
            if (total < need) p = end;  /* too few digits in the whole value for a run of them */
            while (p < end && digits < need) {
                digits = (digits + add[*p]) & keep[*p];
                p++;
            }
            f[r] = (uint8_t)(digits >= need);
        }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&offsets_view);
    PyBuffer_Release(&data);
    return flags;
}

/* merge_rows(offsets, rows, data, picked, new_offsets, new_rows, new_data, alloc=None) ->
   (offsets, data): row i is the next row of the new column where picked[i] is not 0, else row
   i of the column, as pyarrow.compute.replace_with_mask(column, picked, new) gives it, in one
   pass of memcpy. picked holds one byte a row, as many set as the new column has rows. */
static PyObject *merge_rows(PyObject *self, PyObject *args) {
    PyObject *offsets_obj, *new_offsets_obj, *alloc = NULL, *result = NULL;
    Py_ssize_t rows, new_rows;
    Py_buffer offsets_view = {0}, new_offsets_view = {0}, data, new_data, picked;
    if (!PyArg_ParseTuple(args, "Ony*y*Ony*|O", &offsets_obj, &rows, &data, &picked, &new_offsets_obj, &new_rows,
                          &new_data, &alloc))
        return NULL;
    if (get_column_offsets(offsets_obj, &offsets_view, rows, data.len) < 0) goto done;
    if (get_column_offsets(new_offsets_obj, &new_offsets_view, new_rows, new_data.len) < 0) goto done;
    const int32_t *off = (const int32_t *)offsets_view.buf, *new_off = (const int32_t *)new_offsets_view.buf;
    const uint8_t *flags = (const uint8_t *)picked.buf;
    if (picked.len != rows) {
        PyErr_SetString(PyExc_ValueError, "picked must hold one byte a row");
        goto done;
    }
    Py_ssize_t set = 0, bound = 0;
    for (Py_ssize_t i = 0; i < rows; i++) {
        set += flags[i] != 0;
        bound += flags[i] ? 0 : off[i + 1] - off[i];  /* at most data.len in all */
    }
    if (set != new_rows) {
        PyErr_SetString(PyExc_ValueError, "picked must set as many rows as the new column has");
        goto done;
    }
    bound += new_off[new_rows] - new_off[0];
    {
        PyObject *out_offsets = NULL, *out_data = NULL;
        Py_buffer o_view = {0}, d_view = {0};
        if (new_string_buffers(rows, bound, alloc, &out_offsets, &o_view, &out_data, &d_view) == 0) {
            int32_t *o = (int32_t *)o_view.buf;
            uint8_t *dst = (uint8_t *)d_view.buf;
            const uint8_t *src = (const uint8_t *)data.buf, *new_src = (const uint8_t *)new_data.buf;
            Py_BEGIN_ALLOW_THREADS
            Py_ssize_t pos = 0, next = 0;
            o[0] = 0;
            for (Py_ssize_t i = 0; i < rows; i++) {
                const uint8_t *from = flags[i] ? new_src + new_off[next] : src + off[i];
                Py_ssize_t len = flags[i] ? new_off[next + 1] - new_off[next] : off[i + 1] - off[i];
                next += flags[i] != 0;
                memcpy(dst + pos, from, (size_t)len);
                pos += len;
                o[i + 1] = (int32_t)pos;
            }
            Py_END_ALLOW_THREADS
            PyBuffer_Release(&d_view);
            result = PyTuple_Pack(2, out_offsets, out_data);
        }
        if (o_view.obj != NULL) PyBuffer_Release(&o_view);
        if (d_view.obj != NULL) PyBuffer_Release(&d_view);
        Py_XDECREF(out_offsets);
        Py_XDECREF(out_data);
    }
done:
    if (offsets_view.obj != NULL) PyBuffer_Release(&offsets_view);
    if (new_offsets_view.obj != NULL) PyBuffer_Release(&new_offsets_view);
    PyBuffer_Release(&data);
    PyBuffer_Release(&new_data);
    PyBuffer_Release(&picked);
    return result;
}

static PyObject *rows_containing(PyObject *self, PyObject *args) {
    PyObject *offsets_obj;
    Py_ssize_t rows;
    Py_buffer offsets_view, data, needle;
    if (!PyArg_ParseTuple(args, "Ony*y*", &offsets_obj, &rows, &data, &needle)) return NULL;
    if (needle.len < 1) {
        PyBuffer_Release(&data);
        PyBuffer_Release(&needle);
        PyErr_SetString(PyExc_ValueError, "needle must not be empty");
        return NULL;
    }
    if (get_column_offsets(offsets_obj, &offsets_view, rows, data.len) < 0) {
        PyBuffer_Release(&data);
        PyBuffer_Release(&needle);
        return NULL;
    }
    const int32_t *off = (const int32_t *)offsets_view.buf;
    PyObject *flags = PyBytes_FromStringAndSize(NULL, rows);
    if (flags != NULL) {
        uint8_t *f = (uint8_t *)PyBytes_AS_STRING(flags);
        const uint8_t *src = (const uint8_t *)data.buf, *nd = (const uint8_t *)needle.buf;
        Py_ssize_t n = needle.len;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t r = 0; r < rows; r++) {
            const uint8_t *p = src + off[r], *end = src + off[r + 1];
            int hit = 0;
            while (!hit && end - p >= n) {  /* the first byte by memchr, then the rest */
                const uint8_t *q = memchr(p, nd[0], (size_t)(end - p - n + 1));
                if (q == NULL) break;
                hit = memcmp(q + 1, nd + 1, (size_t)(n - 1)) == 0;
                p = q + 1;
            }
            f[r] = (uint8_t)hit;
        }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&offsets_view);
    PyBuffer_Release(&data);
    PyBuffer_Release(&needle);
    return flags;
}

/* The code point of the UTF-8 sequence at t[*i] (any length; a sequence cut short by the end
   of the value gives U+FFFD), advancing *i past it. Nothing is read at or beyond t[n]. */
static inline uint32_t utf8_at(const uint8_t *t, Py_ssize_t n, Py_ssize_t *i) {
    uint8_t c = t[*i];
    Py_ssize_t need = c < 0x80 ? 0 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
    if (need > 0 && *i + need >= n) {  /* the sequence runs past the value */
        *i = n;
        return 0xFFFD;
    }
    uint32_t cp = need == 0 ? c : need == 1 ? (c & 0x1Fu) : need == 2 ? (c & 0x0Fu) : (c & 0x07u);
    for (Py_ssize_t k = 1; k <= need; k++) cp = (cp << 6) | (t[*i + k] & 0x3Fu);
    *i += need + 1;
    return cp;
}

/* A code point folded for rows_with_words: as RE2's (?i) folds the letters of ASCII and
   Cyrillic words (capitals to small letters, U+017F long s to s, U+212A Kelvin sign to k,
   the Cyrillic Extended-C letters U+1C80..U+1C88 to the letters they vary), and ё to е (the
   words list е only: a row is flagged for both spellings). */
static inline uint32_t fold_word(uint32_t cp) {
    if (cp >= 'A' && cp <= 'Z') return cp + 32;
    if (cp >= 0x410 && cp <= 0x42F) return cp + 0x20;
    if (cp >= 0x400 && cp <= 0x40F) cp += 0x50;
    switch (cp) {
        case 0x451: return 0x435;
        case 0x17F: return 's';
        case 0x212A: return 'k';
        case 0x1C80: return 0x432;
        case 0x1C81: return 0x434;
        case 0x1C82: return 0x43E;
        case 0x1C83: return 0x441;
        case 0x1C84:
        case 0x1C85: return 0x442;
        case 0x1C86: return 0x44A;
        case 0x1C87: return 0x463;
        case 0x1C88: return 0xA64B;
        default: return cp;
    }
}

static inline uint8_t ascii_lower(uint8_t c) { return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c; }

/* The slot of a word's first (folded) letter in the first-letter table: ASCII, or а..я; -1
   for any other code point (no word starts with it). */
static inline int first_slot(uint32_t cp) {
    if (cp < 0x80) return (int)cp;
    if (cp >= 0x430 && cp <= 0x44F) return 128 + (int)(cp - 0x430);
    return -1;
}

#define MAX_WORDS 32
#define MAX_WORD_LEN 32

/* rows_with_words(offsets, rows, data, words, before) -> flags: one byte a row, whether the
   value holds one of `words` (UTF-8, separated by NUL bytes, at most 32 of at most 32 letters,
   each starting with an ASCII character or а..я) with the letters folded by fold_word; with
   a non-empty ASCII `before`, only the bytes before its last occurrence (ASCII letters matched
   in either case) count, and a row without it is not flagged. ScrubPII's gate before its
   not-PII context patterns: every match of them holds such a word before a placeholder. */
static PyObject *rows_with_words(PyObject *self, PyObject *args) {
    PyObject *offsets_obj, *flags = NULL;
    Py_ssize_t rows;
    Py_buffer offsets_view, data, words_buf, before;
    if (!PyArg_ParseTuple(args, "Ony*y*y*", &offsets_obj, &rows, &data, &words_buf, &before)) return NULL;
    uint32_t words[MAX_WORDS][MAX_WORD_LEN];
    int lens[MAX_WORDS], nwords = 0, bad = 0;
    uint32_t firsts[160];
    memset(firsts, 0, sizeof firsts);
    {
        const uint8_t *w = words_buf.buf;
        Py_ssize_t n = words_buf.len, i = 0;
        while (i <= n && !bad) {
            if (nwords == MAX_WORDS) {
                bad = 1;
                break;
            }
            int len = 0;
            while (i < n && w[i] != 0) {
                if (len == MAX_WORD_LEN) {
                    bad = 1;
                    break;
                }
                words[nwords][len++] = fold_word(utf8_at(w, n, &i));
            }
            int slot = len ? first_slot(words[nwords][0]) : -1;
            if (slot < 0) {
                bad = 1;
                break;
            }
            firsts[slot] |= 1u << nwords;
            lens[nwords++] = len;
            i++;  /* the NUL, or past the end */
        }
        for (Py_ssize_t k = 0; k < before.len && !bad; k++) bad = ((const uint8_t *)before.buf)[k] >= 0x80;
    }
    if (bad || rows < 0) {
        PyErr_SetString(PyExc_ValueError,
                        "words must be 1..32 NUL-separated UTF-8 words of 1..32 letters starting with an ASCII "
                        "character or а..я, before ASCII, rows >= 0");
        goto released;
    }
    if (get_column_offsets(offsets_obj, &offsets_view, rows, data.len) < 0) goto released;
    const int32_t *off = (const int32_t *)offsets_view.buf;
    Py_ssize_t longest = 0;
    for (Py_ssize_t r = 0; r < rows; r++)
        if (off[r + 1] - off[r] > longest) longest = off[r + 1] - off[r];
    uint32_t *cps = PyMem_Calloc((size_t)(longest ? longest : 1), sizeof(uint32_t));
    flags = PyBytes_FromStringAndSize(NULL, rows);
    if (cps == NULL || flags == NULL) {
        if (cps == NULL) PyErr_NoMemory();
        Py_CLEAR(flags);
    } else {
        uint8_t *f = (uint8_t *)PyBytes_AS_STRING(flags);
        const uint8_t *src = (const uint8_t *)data.buf, *nd = (const uint8_t *)before.buf;
        Py_ssize_t m = before.len;
        int first_byte_case = m > 0 && (nd[0] | 0x20) >= 'a' && (nd[0] | 0x20) <= 'z'; /* an ASCII letter */
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t r = 0; r < rows; r++) {
            const uint8_t *t = src + off[r];
            Py_ssize_t n = off[r + 1] - off[r], end = n, count = 0;
            if (m > 0) {  /* the last occurrence of `before`, from the end */
                end = -1;
                for (Py_ssize_t p = n - m; p >= 0 && end < 0; p--) {
                    if (!first_byte_case) {  /* a first byte that is no letter: found by itself */
                        while (p >= 0 && t[p] != nd[0]) p--;
                        if (p < 0) break;
                    }
                    Py_ssize_t k = 0;
                    while (k < m && ascii_lower(t[p + k]) == ascii_lower(nd[k])) k++;
                    if (k == m) end = p;
                }
            }
            int hit = 0;
            if (end > 0) {
                for (Py_ssize_t i = 0; i < end;) cps[count++] = fold_word(utf8_at(t, end, &i));
                for (Py_ssize_t i = 0; i < count && !hit; i++) {
                    int slot = first_slot(cps[i]);
                    uint32_t candidates = slot < 0 ? 0 : firsts[slot];
                    while (candidates && !hit) {
                        int w = __builtin_ctz(candidates);
                        candidates &= candidates - 1;
                        if (i + lens[w] > count) continue;
                        int k = 1;
                        while (k < lens[w] && cps[i + k] == words[w][k]) k++;
                        hit = k == lens[w];
                    }
                }
            }
            f[r] = (uint8_t)hit;
        }
        Py_END_ALLOW_THREADS
    }
    PyMem_Free(cps);
    PyBuffer_Release(&offsets_view);
released:
    PyBuffer_Release(&data);
    PyBuffer_Release(&words_buf);
    PyBuffer_Release(&before);
    return flags;
}

/* special_rows(offsets, rows, data, bitmap) -> flags: rows holding a code point whose bit is
   set in bitmap (bit cp of byte cp / 8; code points beyond the bitmap are not flagged). A lead
   byte whose code points hold no set bit (the Cyrillic letters' D0, D1...) is skipped without
   decoding: Russian text costs one table lookup a character. */
static PyObject *special_rows(PyObject *self, PyObject *args) {
    PyObject *offsets_obj, *flags = NULL;
    Py_ssize_t rows;
    Py_buffer offsets_view, data, bits;
    if (!PyArg_ParseTuple(args, "Ony*y*", &offsets_obj, &rows, &data, &bits)) return NULL;
    if (get_column_offsets(offsets_obj, &offsets_view, rows, data.len) == 0) {
        const int32_t *off = (const int32_t *)offsets_view.buf;
        flags = PyBytes_FromStringAndSize(NULL, rows);
        if (flags != NULL) {
            uint8_t *f = (uint8_t *)PyBytes_AS_STRING(flags);
            const uint8_t *src = (const uint8_t *)data.buf, *bm = (const uint8_t *)bits.buf;
            uint64_t limit = (uint64_t)bits.len * 8;
            uint8_t lead[256]; /* 1: a sequence starting with this byte may be flagged */
            special_leads(bm, bits.len, lead);
            Py_BEGIN_ALLOW_THREADS
            for (Py_ssize_t r = 0; r < rows; r++) {
                const uint8_t *t = src + off[r];
                Py_ssize_t n = off[r + 1] - off[r];
                int hit = 0;
                for (Py_ssize_t i = 0; i < n && !hit;) {
                    uint8_t c = t[i];
                    if (c < 0x80 || !lead[c]) {  /* ASCII, a continuation byte or an unflagged lead */
                        i++;
                        continue;
                    }
                    uint32_t cp = utf8_at(t, n, &i);
                    hit = cp < limit && ((bm[cp >> 3] >> (cp & 7)) & 1);
                }
                f[r] = (uint8_t)hit;
            }
            Py_END_ALLOW_THREADS
        }
        PyBuffer_Release(&offsets_view);
    }
    PyBuffer_Release(&data);
    PyBuffer_Release(&bits);
    return flags;
}

/* One column of a COPY row: how its field is produced for each row. */
enum { P_CONST, P_BLOCK, P_VAR, P_TEXT, P_INT, P_BOOL, P_NUMERIC };

typedef struct {
    int kind;
    Py_buffer data;     /* CONST: the bytes; BLOCK: rows x width; VAR/TEXT: values; INT/BOOL: values */
    Py_buffer offsets;  /* VAR/TEXT: int32 offsets (rows + 1) */
    Py_buffer valid;    /* TEXT/INT/BOOL: Arrow validity bitmap, or none */
    Py_buffer prefix;   /* TEXT: bytes written before each value (jsonb's version byte) */
    Py_ssize_t width;   /* BLOCK: row width; INT: source width in bytes */
    Py_ssize_t out_width; /* INT: field width in bytes (2, 4, 8) */
    Py_ssize_t bit;     /* TEXT/INT/BOOL: offset of the first row in the validity bitmap (and in BOOL's data) */
    Py_ssize_t first;   /* INT: index of the first row's value */
    long long delta;    /* INT: added to each value (epoch shifts of dates and timestamps) */
    int scale;          /* NUMERIC: the decimal scale (dscale) */
    int ndigits;        /* NUMERIC: base-10000 digits per value */
} Part;

static inline int is_valid(const Part *p, Py_ssize_t i) {
    if (p->valid.obj == NULL) return 1;
    Py_ssize_t b = p->bit + i;
    return (((const uint8_t *)p->valid.buf)[b >> 3] >> (b & 7)) & 1;
}

static inline void put_be32(uint8_t *d, uint32_t v) {
    d[0] = (uint8_t)(v >> 24);
    d[1] = (uint8_t)(v >> 16);
    d[2] = (uint8_t)(v >> 8);
    d[3] = (uint8_t)v;
}

static inline int64_t get_le(const uint8_t *s, Py_ssize_t width) {
    switch (width) {
        case 1: return (int8_t)s[0];
        case 2: return (int16_t)((uint16_t)s[0] | ((uint16_t)s[1] << 8));
        case 4: return (int32_t)((uint32_t)s[0] | ((uint32_t)s[1] << 8) | ((uint32_t)s[2] << 16) | ((uint32_t)s[3] << 24));
        default: return (int64_t)load64(s);
    }
}

/* PostgreSQL's binary numeric of a NUMERIC part's row i (valid): ndigits base-10000 digits
   aligned on the decimal point, leading zeros kept (PostgreSQL strips them on receipt), the
   same bytes as pgcopy._numeric. The value, shifted by the padding of its last digit group,
   fits 64 bits: the caller sends at most 18 decimal digits plus that padding, or an int64. */
static uint8_t *put_numeric(uint8_t *dst, const Part *p, Py_ssize_t i) {
    const uint8_t *src = (const uint8_t *)p->data.buf + (p->first + i) * p->width;
    int64_t v = get_le(src, p->width == 16 ? 8 : p->width);
    int negative = v < 0;
    uint64_t magnitude = negative ? (uint64_t)(-(v + 1)) + 1u : (uint64_t)v;
    int frac_groups = (p->scale + 3) / 4;
    for (int k = 4 * frac_groups - p->scale; k > 0; k--) magnitude *= 10u;
    put_be32(dst, (uint32_t)(8 + 2 * p->ndigits));
    uint16_t head[4] = {(uint16_t)p->ndigits, (uint16_t)(p->ndigits - frac_groups - 1),
                        negative ? 0x4000 : 0x0000, (uint16_t)p->scale};
    for (int k = 0; k < 4; k++) {
        dst[4 + 2 * k] = (uint8_t)(head[k] >> 8);
        dst[5 + 2 * k] = (uint8_t)head[k];
    }
    uint8_t *digit = dst + 12 + 2 * p->ndigits;
    for (int k = 0; k < p->ndigits; k++) {
        uint16_t d = (uint16_t)(magnitude % 10000u);
        magnitude /= 10000u;
        *--digit = (uint8_t)d;
        *--digit = (uint8_t)(d >> 8);
    }
    return dst + 12 + 2 * p->ndigits;
}

static void release_part(Part *p) {
    if (p->data.obj != NULL) PyBuffer_Release(&p->data);
    if (p->offsets.obj != NULL) PyBuffer_Release(&p->offsets);
    if (p->valid.obj != NULL) PyBuffer_Release(&p->valid);
    if (p->prefix.obj != NULL) PyBuffer_Release(&p->prefix);
}

/* Whether a bitmap (absent: all valid) holds the bits [bit, bit + rows); overflow-checked. */
static int bitmap_covers(const Py_buffer *b, Py_ssize_t bit, Py_ssize_t rows) {
    Py_ssize_t end;
    if (bit < 0 || __builtin_add_overflow(bit, rows, &end)) return 0;
    return b->obj == NULL || rows == 0 || (end - 1) / 8 < b->len;
}

static int get_optional(PyObject *obj, Py_buffer *view) {
    if (obj == Py_None) return 0;
    return PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS);
}

/* Parse one part description and hold its buffers: 0, or -1 with an error set. What the
   buffers hold (offsets) is checked by part_size, once no Python code can run any more. */
/* A fixed-width part's values (``width`` bytes each from index ``first``) and its optional
   validity bitmap, both checked to cover ``rows``. 0, or -1 with an error set (``short_msg``
   names the part when its values do not cover the rows). */
static int fixed_values(Part *p, PyObject *values, PyObject *valid, Py_ssize_t rows, const char *short_msg) {
    if (PyObject_GetBuffer(values, &p->data, PyBUF_C_CONTIGUOUS) < 0) return -1;
    Py_ssize_t end;
    if (__builtin_add_overflow(p->first, rows, &end) || __builtin_mul_overflow(end, p->width, &end) ||
        p->data.len < end) {
        PyErr_SetString(PyExc_ValueError, short_msg);
        return -1;
    }
    if (get_optional(valid, &p->valid) < 0) return -1;
    if (!bitmap_covers(&p->valid, p->bit, rows)) {
        PyErr_SetString(PyExc_ValueError, "validity bitmap shorter than the rows");
        return -1;
    }
    return 0;
}

static int parse_part(PyObject *item, Py_ssize_t rows, Part *p) {
    const char *kind;
    PyObject *a = NULL, *b = NULL, *c = NULL;
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) < 2) goto bad;
    kind = PyUnicode_AsUTF8(PyTuple_GET_ITEM(item, 0));
    if (kind == NULL) return -1;
    if (strcmp(kind, "const") == 0) {
        p->kind = P_CONST;
        return PyArg_ParseTuple(item, "sy*", &kind, &p->data) ? 0 : -1;
    }
    if (strcmp(kind, "block") == 0) {
        p->kind = P_BLOCK;
        if (!PyArg_ParseTuple(item, "snO", &kind, &p->width, &a)) return -1;
        if (PyObject_GetBuffer(a, &p->data, PyBUF_C_CONTIGUOUS) < 0) return -1;
        if (p->width <= 0) {
            PyErr_SetString(PyExc_ValueError, "block part: width must be >= 1");
            return -1;
        }
        Py_ssize_t size = checked_size(rows, p->width, 0);
        if (size < 0) return -1;
        if (p->data.len < size) {
            PyErr_SetString(PyExc_ValueError, "block part shorter than rows x width");
            return -1;
        }
        return 0;
    }
    if (strcmp(kind, "var") == 0 || strcmp(kind, "text") == 0) {
        int text = kind[0] == 't';
        p->kind = text ? P_TEXT : P_VAR;
        if (text) {
            if (!PyArg_ParseTuple(item, "sOOOny*", &kind, &a, &b, &c, &p->bit, &p->prefix)) return -1;
        } else if (!PyArg_ParseTuple(item, "sOO", &kind, &a, &b)) {
            return -1;
        }
        if (PyObject_GetBuffer(b, &p->data, PyBUF_C_CONTIGUOUS) < 0) return -1;
        if (get_offsets(a, &p->offsets, rows) < 0) return -1;
        if (text) {
            if (get_optional(c, &p->valid) < 0) return -1;
            if (!bitmap_covers(&p->valid, p->bit, rows)) {
                PyErr_SetString(PyExc_ValueError, "validity bitmap shorter than the rows");
                return -1;
            }
        }
        return 0;
    }
    if (strcmp(kind, "int") == 0) {
        long long delta;
        p->kind = P_INT;
        if (!PyArg_ParseTuple(item, "snnOnOnL", &kind, &p->width, &p->out_width, &a, &p->first, &c, &p->bit, &delta))
            return -1;
        p->delta = delta;
        if (!(p->width == 1 || p->width == 2 || p->width == 4 || p->width == 8) ||
            !(p->out_width == 2 || p->out_width == 4 || p->out_width == 8) || p->first < 0) {
            PyErr_SetString(PyExc_ValueError, "int part: widths must be 1/2/4/8 and 2/4/8");
            return -1;
        }
        return fixed_values(p, a, c, rows, "int part: values buffer shorter than the rows");
    }
    if (strcmp(kind, "numeric") == 0) {
        p->kind = P_NUMERIC;
        if (!PyArg_ParseTuple(item, "snOnOnii", &kind, &p->width, &a, &p->first, &c, &p->bit, &p->scale,
                              &p->ndigits))
            return -1;
        if (!(p->width == 1 || p->width == 2 || p->width == 4 || p->width == 8 || p->width == 16) ||
            p->first < 0 || p->scale < 0 || p->scale > 1000 || p->ndigits < 1 || p->ndigits > 8 ||
            p->ndigits < (p->scale + 3) / 4) {
            PyErr_SetString(PyExc_ValueError, "numeric part: width 1/2/4/8/16, 0 <= scale, 1 <= ndigits <= 8");
            return -1;
        }
        return fixed_values(p, a, c, rows, "numeric part: values buffer shorter than the rows");
    }
    if (strcmp(kind, "bool") == 0) {
        p->kind = P_BOOL;
        if (!PyArg_ParseTuple(item, "sOOn", &kind, &a, &c, &p->bit)) return -1;
        if (PyObject_GetBuffer(a, &p->data, PyBUF_C_CONTIGUOUS) < 0) return -1;
        if (get_optional(c, &p->valid) < 0) return -1;
        if (!bitmap_covers(&p->data, p->bit, rows) || !bitmap_covers(&p->valid, p->bit, rows)) {
            PyErr_SetString(PyExc_ValueError, "bool part: bitmaps shorter than the rows");
            return -1;
        }
        return 0;
    }
bad:
    PyErr_SetString(PyExc_TypeError, "a part is ('const'|'block'|'var'|'text'|'int'|'bool'|'numeric', ...)");
    return -1;
}

/* A parsed part's output size, its offsets checked: after the last part was parsed, so no
   Python code of the caller (an __index__ of a later part) can change them before the copy.
   -1 with an error set. */
static Py_ssize_t part_size(const Part *p, Py_ssize_t rows) {
    switch (p->kind) {
        case P_CONST: return checked_size(rows, p->data.len, 0);
        case P_BLOCK: return checked_size(rows, p->width, 0);
        case P_INT: return checked_size(rows, 4 + p->out_width, 0);
        case P_BOOL: return checked_size(rows, 5, 0);
        case P_NUMERIC: return checked_size(rows, 12 + 2 * p->ndigits, 0);
        default: break;
    }
    const int32_t *off = (const int32_t *)p->offsets.buf;
    if (check_offsets(off, rows, p->data.len) < 0) {
        PyErr_SetString(PyExc_ValueError, "offsets out of order or beyond the data buffer");
        return -1;
    }
    Py_ssize_t bytes = off[rows] - off[0];
    if (p->kind == P_VAR) return bytes;
    if (p->prefix.len > INT32_MAX - bytes) {  /* a field's length is an int32 */
        PyErr_SetString(PyExc_ValueError, "text part: a field would pass 2 GiB");
        return -1;
    }
    return checked_size(rows, 4 + p->prefix.len, bytes);
}

static PyObject *copy_rows(PyObject *self, PyObject *args) {
    PyObject *parts;
    Py_ssize_t rows;
    if (!PyArg_ParseTuple(args, "On", &parts, &rows)) return NULL;
    if (rows < 0) {
        PyErr_SetString(PyExc_ValueError, "rows must be >= 0");
        return NULL;
    }
    PyObject *seq = PySequence_Tuple(parts);  /* a tuple: the caller cannot change it meanwhile */
    if (seq == NULL) return NULL;
    Py_ssize_t k = PyTuple_GET_SIZE(seq), got = 0, total = 0;
    Part *ps = PyMem_Calloc(k ? k : 1, sizeof(Part));
    PyObject *out = NULL;
    if (ps == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (; got < k; got++) {
        if (parse_part(PyTuple_GET_ITEM(seq, got), rows, &ps[got]) < 0) {
            got++;
            goto done;
        }
    }
    for (Py_ssize_t j = 0; j < k; j++) {
        Py_ssize_t size = part_size(&ps[j], rows);
        if (size < 0) goto done;
        if (__builtin_add_overflow(total, size, &total)) {
            PyErr_SetString(PyExc_OverflowError, "COPY rows size overflows");
            goto done;
        }
    }
    out = PyBytes_FromStringAndSize(NULL, total);
    if (out == NULL) goto done;
    {
        uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(out);
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < rows; i++) {
            for (Py_ssize_t j = 0; j < k; j++) {
                const Part *p = &ps[j];
                const uint8_t *src = (const uint8_t *)p->data.buf;
                switch (p->kind) {
                    case P_CONST:
                        memcpy(dst, src, p->data.len);
                        dst += p->data.len;
                        break;
                    case P_BLOCK:
                        memcpy(dst, src + i * p->width, p->width);
                        dst += p->width;
                        break;
                    case P_VAR: {
                        const int32_t *off = (const int32_t *)p->offsets.buf;
                        Py_ssize_t len = off[i + 1] - off[i];
                        memcpy(dst, src + off[i], len);
                        dst += len;
                        break;
                    }
                    case P_TEXT: {
                        const int32_t *off = (const int32_t *)p->offsets.buf;
                        if (!is_valid(p, i)) {
                            put_be32(dst, 0xFFFFFFFFu);
                            dst += 4;
                            break;
                        }
                        Py_ssize_t len = off[i + 1] - off[i];
                        put_be32(dst, (uint32_t)(len + p->prefix.len));
                        dst += 4;
                        memcpy(dst, p->prefix.buf, p->prefix.len);
                        dst += p->prefix.len;
                        memcpy(dst, src + off[i], len);
                        dst += len;
                        break;
                    }
                    case P_INT: {
                        if (!is_valid(p, i)) {
                            put_be32(dst, 0xFFFFFFFFu);
                            dst += 4;
                            break;
                        }
                        uint64_t v = (uint64_t)get_le(src + (p->first + i) * p->width, p->width) + (uint64_t)p->delta;
                        put_be32(dst, (uint32_t)p->out_width);
                        dst += 4;
                        for (Py_ssize_t b = p->out_width - 1; b >= 0; b--) *dst++ = (uint8_t)(v >> (8 * b));
                        break;
                    }
                    case P_NUMERIC: {
                        if (!is_valid(p, i)) {
                            put_be32(dst, 0xFFFFFFFFu);
                            dst += 4;
                            break;
                        }
                        dst = put_numeric(dst, p, i);
                        break;
                    }
                    case P_BOOL: {
                        if (!is_valid(p, i)) {
                            put_be32(dst, 0xFFFFFFFFu);
                            dst += 4;
                            break;
                        }
                        Py_ssize_t b = p->bit + i;
                        put_be32(dst, 1);
                        dst[4] = (src[b >> 3] >> (b & 7)) & 1;
                        dst += 5;
                        break;
                    }
                }
            }
        }
        Py_END_ALLOW_THREADS
        /* NULL fields are shorter than their worst case: trim to what was written */
        Py_ssize_t written = (Py_ssize_t)(dst - (uint8_t *)PyBytes_AS_STRING(out));
        if (written != total && _PyBytes_Resize(&out, written) < 0) out = NULL;
    }
done:
    if (ps != NULL) {
        for (Py_ssize_t j = 0; j < got; j++) release_part(&ps[j]);
        PyMem_Free(ps);
    }
    Py_DECREF(seq);
    return out;
}

/* _copyread.c: PostgreSQL binary COPY into Arrow buffers (the read side of the PostgreSQL path) */
PyObject *copy_drain(PyObject *self, PyObject *args);
PyObject *copy_decode(PyObject *self, PyObject *args);
PyObject *copy_changed(PyObject *self, PyObject *args);

static PyMethodDef methods[] = {
    {"blake2b_tokens", blake2b_tokens, METH_VARARGS,
     "blake2b_tokens(key, digest_size, prefix, offsets, rows, data, alloc=None) -> bytes: prefix + hex of the "
     "keyed BLAKE2b digest of each value of an Arrow string array, back to back (in alloc(n) when given)."},
    {"blake2b_lanes", blake2b_lanes, METH_VARARGS,
     "blake2b_lanes(lanes=None) -> int: how many values blake2b_tokens hashes at a time: 8 (AVX-512F), "
     "4 (AVX2) or 1; an int asks for at most that many (tests of each path)."},
    {"phone_e164", phone_e164, METH_VARARGS,
     "phone_e164(offsets, rows, data, alloc=None) -> (offsets, data, unsure): phones of an Arrow string array in E.164; "
     "rows flagged in unsure (other countries, international prefixes) are copied for libphonenumber."},
    {"replace_ascii_emails", replace_ascii_emails, METH_VARARGS,
     "replace_ascii_emails(offsets, rows, data, placeholder, alloc=None) -> (offsets, data, unsure): ScrubPII's email rule "
     "on ASCII contexts; rows flagged in unsure need RE2."},
    {"replace_program", replace_program, METH_VARARGS,
     "replace_program(offsets, rows, data, program, first, min_len, placeholder, alloc=None) -> (offsets, data): "
     "leftmost-first replacement of a small token program (ScrubPII's phone rules)."},
    {"scrub_gates", scrub_gates, METH_VARARGS,
     "scrub_gates(offsets, rows, data[, bitmap]) -> (picked, passport[, special]): ScrubPII's prefilter and "
     "passport-context flags (and special_rows' flags for the bitmap), in one pass."},
    {"special_rows", special_rows, METH_VARARGS,
     "special_rows(offsets, rows, data, bitmap) -> flags: rows holding a code point set in the bitmap "
     "(ScrubPII's Unicode spaces, dashes and digits)."},
    {"digit_runs", digit_runs, METH_VARARGS,
     "digit_runs(offsets, rows, data, min_digits) -> flags: rows with a run of digits/spaces/dashes holding "
     "min_digits digits."},
    {"rows_with_words", rows_with_words, METH_VARARGS,
     "rows_with_words(offsets, rows, data, words, before) -> flags: rows holding one of the NUL-separated "
     "words (case-folded), before the last occurrence of `before` when it is not empty."},
    {"merge_rows", merge_rows, METH_VARARGS,
     "merge_rows(offsets, rows, data, picked, new_offsets, new_rows, new_data, alloc=None) -> (offsets, data): "
     "the column with the rows picked (one byte a row) replaced by the new column's, in order."},
    {"rows_containing", rows_containing, METH_VARARGS,
     "rows_containing(offsets, rows, data, needle) -> flags: rows whose value holds the byte string needle."},
    {"copy_rows", copy_rows, METH_VARARGS,
     "copy_rows(parts, rows) -> bytes: PostgreSQL binary COPY rows from per-column parts."},
    {"copy_drain", copy_drain, METH_VARARGS,
     "copy_drain(conn, get_copy_data, freemem, max_messages, max_bytes) -> (bytes, state): libpq COPY OUT "
     "messages back to back; state 0 more, 1 ended, -2 error."},
    {"copy_decode", copy_decode, METH_VARARGS,
     "copy_decode(data, start, kinds, max_rows[, decimals]) -> (end, rows, finished, columns, flagged): binary "
     "COPY rows decoded into Arrow buffers (decimals: (precision, scale) a column, for 'N' numerics); "
     "flagged: dates/timestamps out of the common format's range."},
    {"copy_changed", copy_changed, METH_VARARGS,
     "copy_changed(payload, existing, compare, key) -> bytes: one byte a payload row, 0 when the target's "
     "rows (existing) hold it unchanged."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native",
                                    "Compiled hot loops of etl-express (optional; pure-Python fallbacks exist).",
                                    -1, methods};

PyMODINIT_FUNC PyInit__native(void) {
    fill_hex_pairs();
    return PyModule_Create(&module);
}

/*
 * The PostgreSQL read side of etl_express._native: PostgreSQL's binary COPY stream taken from
 * libpq and decoded into Arrow column buffers, with the GIL released.
 *
 *   copy_drain(conn, get_copy_data, freemem, max_messages, max_bytes[, hint]) -> (bytes, state)
 *       Calls libpq's PQgetCopyData(conn, &buf, 0) (blocking) for up to max_messages
 *       messages or until max_bytes are held, and returns their bytes back to back (hint:
 *       the bytes expected, to size the buffer once). The
 *       three pointers are addresses: the PGconn of a connection in the COPY OUT state and
 *       the two functions of the libpq it was opened with. state is 0 while the COPY goes on,
 *       1 when it ended (PQgetCopyData returned -1) and -2 on an error (the caller reads
 *       libpq's result for the message).
 *
 *   copy_decode(data, start, kinds, max_rows[, decimals]) -> (end, rows, finished, columns, flagged)
 *       Decodes the complete rows of binary COPY data from byte `start` (after the file
 *       header), at most max_rows of them; `end` is the offset after the last decoded row
 *       (or after the trailer, when `finished`). kinds has one byte a column:
 *         'h' 'i' 'q'  int2 / int4 / int8          -> int64 values
 *         'f' 'd'      float4 / float8             -> float64 values
 *         'b'          bool                        -> bit-packed booleans
 *         'D'          date                        -> date32 (days since 1970-01-01)
 *         'T'          timestamp / timestamptz     -> int64 microseconds since 1970 (UTC)
 *         's'          text, varchar, bpchar, name, json -> UTF-8 bytes as sent
 *         'j'          jsonb                       -> its text (the version byte dropped)
 *         'u'          uuid                        -> 8-4-4-4-12 lowercase hex
 *         'n'          numeric                     -> PostgreSQL's own text form of it
 *         'N'          numeric(p, s), p <= 38       -> decimal128(p, s): 16-byte little-endian values
 *       decimals has two bytes a column, (p, s) with 0 <= s <= p <= 38, read for the 'N' ones.
 *       An 'N' column holds exactly what Arrow's cast of its text form to decimal128(p, s)
 *       holds; where a value of the batch needs that cast's judgement (NaN, +/-Infinity,
 *       more fraction digits than s, p exceeded) the column comes in the batch as an 'n' one
 *       (its text) for the caller's cast to decide, as without 'N'.
 *       A column is (values, validity, null_count) or, for strings, (offsets, data, validity,
 *       null_count): Arrow buffers (int32 offsets; validity None without nulls). A date or
 *       timestamp the common format cannot hold -- PostgreSQL's +/-infinity, or a value outside
 *       0001-01-01 .. 9999-12-31 23:59:59.999999, which Python's datetime cannot hold (and the
 *       latest timestamps not even int64 microseconds since 1970) -- is null in its column, and
 *       `flagged` lists every such field as int64 quadruples (row, column, code, PostgreSQL's
 *       raw value: days or microseconds since 2000-01-01), code +1/-1 for +/-infinity, +2 after
 *       the range, -2 before it; None when there is none.
 *       A field of the wrong size or a malformed row raises ValueError
 *       naming the row and column; the caller then reads through its general path instead. A
 *       batch also ends early before any string column would pass 2 GiB (int32 offsets).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef int (*GetCopyDataFn)(void *conn, char **buffer, int async);
typedef void (*FreememFn)(void *ptr);

PyObject *copy_drain(PyObject *self, PyObject *args) {
    unsigned long long conn_addr, get_addr, free_addr;
    Py_ssize_t max_messages, max_bytes, hint = 1 << 20;
    if (!PyArg_ParseTuple(args, "KKKnn|n", &conn_addr, &get_addr, &free_addr, &max_messages, &max_bytes, &hint))
        return NULL;
    if (conn_addr == 0 || get_addr == 0 || free_addr == 0) {
        PyErr_SetString(PyExc_ValueError, "null connection or libpq function address");
        return NULL;
    }
    /* the addresses cannot be checked (pgbinary takes them from psycopg and libpq); the sizes are */
    if (max_messages < 0 || max_bytes < 0) {
        PyErr_SetString(PyExc_ValueError, "max_messages and max_bytes must be >= 0");
        return NULL;
    }
    void *conn = (void *)(uintptr_t)conn_addr;
    GetCopyDataFn get = (GetCopyDataFn)(uintptr_t)get_addr;
    FreememFn freemem = (FreememFn)(uintptr_t)free_addr;
    /* the messages go straight into the bytes object returned (sized by the caller's hint,
       grown when needed, trimmed at the end): no second copy */
    Py_ssize_t cap = hint > 4096 ? hint : 4096, len = 0, need = 0;
    PyObject *data = PyBytes_FromStringAndSize(NULL, cap);
    if (data == NULL) return NULL;
    int state = 0, failed = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t m = 0; m < max_messages && len < max_bytes; m++) {
        char *msg = NULL;
        int n = get(conn, &msg, 0);
        if (n < 0) {
            state = n == -1 ? 1 : -2;
            break;
        }
        if (__builtin_add_overflow(len, (Py_ssize_t)n, &need)) need = PY_SSIZE_T_MAX;
        if (need > cap) {
            Py_ssize_t want = cap;
            while (want < need) want = want > PY_SSIZE_T_MAX / 2 ? PY_SSIZE_T_MAX : 2 * want;
            Py_BLOCK_THREADS
            /* PY_SSIZE_T_MAX: a message the bytes object cannot take; the resize fails cleanly */
            failed = _PyBytes_Resize(&data, want) < 0;
            Py_UNBLOCK_THREADS
            if (failed) {
                freemem(msg);
                break;
            }
            cap = want;
        }
        memcpy(PyBytes_AS_STRING(data) + len, msg, (size_t)n);
        len += n;
        freemem(msg);
    }
    Py_END_ALLOW_THREADS
    if (failed) return NULL;  /* _PyBytes_Resize released the object and set the error */
    if (len < cap && _PyBytes_Resize(&data, len) < 0) return NULL;
    return Py_BuildValue("(Ni)", data, state);
}

static inline uint16_t be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t be64(const uint8_t *p) { return ((uint64_t)be32(p) << 32) | be32(p + 4); }

#define NUMERIC_NEG 0x4000
#define NUMERIC_NAN 0xC000
#define NUMERIC_PINF 0xD000
#define NUMERIC_NINF 0xF000
#define DATE_SHIFT 10957                    /* days from 1970-01-01 to 2000-01-01 */
#define TIMESTAMP_SHIFT 946684800000000LL   /* microseconds from 1970 to 2000 */
#define STRING_LIMIT 0x7fffffffLL            /* int32 offsets */

static int is_string_kind(char k) { return k == 's' || k == 'j' || k == 'u' || k == 'n'; }

/* Bytes a numeric field's text form can take (exact for NaN/infinities, an upper bound else);
   -1 when the field is malformed. */
static Py_ssize_t numeric_bound(const uint8_t *p, int32_t len) {
    if (len < 8) return -1;
    int ndigits = be16(p), weight = (int16_t)be16(p + 2), sign = be16(p + 4), dscale = be16(p + 6);
    if (len != 8 + 2 * ndigits) return -1;
    if (sign == NUMERIC_NAN) return 3;
    if (sign == NUMERIC_PINF) return 8;
    if (sign == NUMERIC_NINF) return 9;
    if (sign != 0 && sign != NUMERIC_NEG) return -1;
    for (int g = 0; g < ndigits; g++)
        if (be16(p + 8 + 2 * g) >= 10000) return -1;  /* a base-10000 digit; else no decimal text */
    int int_groups = weight >= 0 ? weight + 1 : 1;
    return 1 + 4 * (Py_ssize_t)int_groups + 1 + dscale + 4;
}

/* PostgreSQL's numeric_out (get_str_from_var): sign, integer part without leading zeros,
   then exactly dscale fraction digits (digits beyond the stored ones are zeros). */
static Py_ssize_t numeric_text(const uint8_t *p, uint8_t *dst) {
    int ndigits = be16(p), weight = (int16_t)be16(p + 2), sign = be16(p + 4), dscale = be16(p + 6);
    const uint8_t *digits = p + 8;
    uint8_t *d = dst;
    if (sign == NUMERIC_NAN) { memcpy(d, "NaN", 3); return 3; }
    if (sign == NUMERIC_PINF) { memcpy(d, "Infinity", 8); return 8; }
    if (sign == NUMERIC_NINF) { memcpy(d, "-Infinity", 9); return 9; }
    if (sign == NUMERIC_NEG) *d++ = '-';
    int leading = 1;  /* zeros before the first significant digit are not written (a value
                         PostgreSQL stored never has a zero first group; a client's may) */
    for (int g = 0; g <= weight; g++) {
        int v = g < ndigits ? be16(digits + 2 * g) : 0;
        char four[4] = {(char)('0' + v / 1000), (char)('0' + v / 100 % 10), (char)('0' + v / 10 % 10),
                        (char)('0' + v % 10)};
        for (int k = 0; k < 4; k++) {
            if (leading && four[k] == '0') continue;
            leading = 0;
            *d++ = (uint8_t)four[k];
        }
    }
    if (leading) *d++ = '0';
    if (dscale > 0) {
        *d++ = '.';
        int written = 0;
        for (int g = weight + 1; written < dscale; g++) {
            int v = (g >= 0 && g < ndigits) ? be16(digits + 2 * g) : 0;
            char four[4] = {(char)('0' + v / 1000), (char)('0' + v / 100 % 10), (char)('0' + v / 10 % 10),
                            (char)('0' + v % 10)};
            for (int k = 0; k < 4 && written < dscale; k++, written++) *d++ = (uint8_t)four[k];
        }
    }
    return (Py_ssize_t)(d - dst);
}

/* *acc * factor + add (factor <= 10^4, add < factor), 0 when that reaches limit. */
static inline int shift_in(unsigned __int128 *acc, unsigned factor, unsigned add, unsigned __int128 limit) {
    /* up to `safe`, acc * 10^4 + 9999 cannot wrap around: the common case divides nothing
       (a 128-bit division costs more than the rest of a value); past it, acc < limit, so
       limit > add */
    const unsigned __int128 safe = (~(unsigned __int128)0) / 10000 - 1;
    if (*acc > safe && *acc > (limit - 1 - add) / factor) return 0;
    unsigned __int128 next = *acc * factor + add;
    if (next >= limit) return 0;
    *acc = next;
    return 1;
}

static const unsigned POW10[5] = {1, 10, 100, 1000, 10000};

/* numeric_decimal for a precision of at most 14 (numeric(12,2) and the like), in 64 bits:
   below the limit, acc * 10^4 + 9999 stays under 10^18, so each step only compares. */
#define SMALL_LIMIT 100000000000000ULL /* 10^14 */
static int small_decimal(const uint8_t *digits, int ndigits, int weight, int sign, int dscale, uint64_t limit,
                         int scale, __int128 *out) {
    uint64_t acc = 0;
    for (int g = 0; g <= weight; g++) {
        acc = acc * 10000 + (g < ndigits ? be16(digits + 2 * g) : 0);
        if (acc >= limit) return 0;
    }
    for (int g = weight + 1, fraction = 0; fraction < dscale; g++) {
        unsigned v = (g >= 0 && g < ndigits) ? be16(digits + 2 * g) : 0;
        int take = dscale - fraction < 4 ? dscale - fraction : 4;
        switch (take) {  /* constant divisors: multiplications, not divisions */
            case 4: acc = acc * 10000 + v; break;
            case 3: acc = acc * 1000 + v / 10; break;
            case 2: acc = acc * 100 + v / 100; break;
            default: acc = acc * 10 + v / 1000;
        }
        if (acc >= limit) return 0;
        fraction += take;
    }
    for (int left = scale - dscale; left > 0; left -= 4) {
        acc *= POW10[left < 4 ? left : 4];
        if (acc >= limit) return 0;
    }
    *out = sign == NUMERIC_NEG ? -(__int128)acc : (__int128)acc;
    return 1;
}

/* The value of a binary numeric as decimal128(precision, scale) -- the number Arrow's cast of
   its text form (numeric_text: the integer digits, then exactly dscale fraction digits) gives
   -- in *out; 0 when that cast must decide instead: NaN or an infinity, more fraction digits
   than the scale (Arrow refuses what a rescale would lose), or past the precision (``limit``
   is 10^precision). */
static int numeric_decimal(const uint8_t *p, unsigned __int128 limit, int scale, __int128 *out) {
    int ndigits = be16(p), weight = (int16_t)be16(p + 2), sign = be16(p + 4), dscale = be16(p + 6);
    const uint8_t *digits = p + 8;
    if ((sign != 0 && sign != NUMERIC_NEG) || dscale > scale) return 0;
    if (limit <= SMALL_LIMIT) return small_decimal(digits, ndigits, weight, sign, dscale, (uint64_t)limit, scale, out);
    unsigned __int128 acc = 0;
    /* the integer groups (weight + 1 of them, a zero past the stored digits) */
    for (int g = 0; g <= weight; g++)
        if (!shift_in(&acc, 10000, g < ndigits ? be16(digits + 2 * g) : 0, limit)) return 0;
    /* then the fraction groups from weight + 1, up to dscale digits (the text stops there) */
    for (int g = weight + 1, fraction = 0; fraction < dscale; g++) {
        unsigned v = (g >= 0 && g < ndigits) ? be16(digits + 2 * g) : 0;
        int take = dscale - fraction < 4 ? dscale - fraction : 4;
        if (!shift_in(&acc, POW10[take], v / POW10[4 - take], limit)) return 0;
        fraction += take;
    }
    for (int left = scale - dscale; left > 0; left -= 4)  /* Arrow's rescale to the scale */
        if (!shift_in(&acc, POW10[left < 4 ? left : 4], 0, limit)) return 0;
    *out = sign == NUMERIC_NEG ? -(__int128)acc : (__int128)acc;
    return 1;
}

/* The fixed size a kind's field must have, 0 for variable-length kinds. */
static int32_t fixed_size(char k) {
    switch (k) {
        case 'h': return 2;
        case 'i': case 'f': case 'D': return 4;
        case 'q': case 'd': case 'T': return 8;
        case 'b': return 1;
        case 'u': return 16;
        default: return 0;
    }
}

typedef struct {
    char kind;          /* as asked, except an 'N' column this batch takes as text ('n') */
    char text_in_row;   /* the row being scanned turns this 'N' column to text */
    int scale;          /* of an 'N' column, with limit = 10^precision */
    int whole_digits;   /* precision - scale: the integer digits an 'N' column holds */
    unsigned __int128 limit;
    PyObject *values;   /* fixed-width values, or int32 offsets for strings */
    PyObject *data;     /* string bytes */
    PyObject *validity;
    Py_ssize_t nulls;
    Py_ssize_t bound;   /* string bytes the batch may need */
} Column;

/* Whether numeric_decimal takes the field for an 'N' column (scan's question; fill then
   decodes it): most values answer from their header -- at most weight + 1 groups of four
   integer digits, within the column's -- without the digits' arithmetic done twice. */
static int decimal_fits(const uint8_t *p, const Column *col) {
    int weight = (int16_t)be16(p + 2), sign = be16(p + 4), dscale = be16(p + 6);
    if ((sign != 0 && sign != NUMERIC_NEG) || dscale > col->scale) return 0;
    if (weight < 0 || 4 * (weight + 1) <= col->whole_digits) return 1;  /* fraction only, or few digits */
    __int128 unused;
    return numeric_decimal(p, col->limit, col->scale, &unused);
}

/* Where and why the first pass stopped on a malformed field: it runs without the GIL, so the
   ValueError is raised from this after the GIL is back. */
typedef struct {
    Py_ssize_t row, col;
    const char *what;
} ScanError;

static int decode_error(ScanError *err, Py_ssize_t row, Py_ssize_t col, const char *what) {
    err->row = row;
    err->col = col;
    err->what = what;
    return -1;
}

/* First pass: how many complete rows (<= max_rows) lie in [start, len) and the string bytes
   each column needs, an 'N' column turned to 'n' where a value needs the text path; -1 with
   ``err`` filled when a field is malformed. Touches no Python
   object: called without the GIL, so the other threads of a load (encoding the previous
   batch, committing it) run while a batch is scanned. */
static int scan(const uint8_t *buf, Py_ssize_t len, Py_ssize_t start, Py_ssize_t ncols,
                Py_ssize_t max_rows, Column *cols, Py_ssize_t *add, Py_ssize_t *rows_out, Py_ssize_t *end_out,
                int *finished, ScanError *err) {
    Py_ssize_t pos = start, rows = 0;
    *finished = 0;
    while (rows < max_rows) {
        if (len - pos < 2) break;
        int16_t nfields = (int16_t)be16(buf + pos);
        if (nfields == -1) {
            *finished = 1;
            pos += 2;
            break;
        }
        if (nfields != ncols) return decode_error(err, rows, -1, "field count differs from the query's columns");
        Py_ssize_t p = pos + 2;
        int complete = 1;
        for (Py_ssize_t c = 0; c < ncols; c++) {
            if (len - p < 4) { complete = 0; break; }
            int32_t flen = (int32_t)be32(buf + p);
            p += 4;
            add[c] = 0;
            cols[c].text_in_row = 0;
            if (flen == -1) continue;
            if (flen < 0) return decode_error(err, rows, c, "negative field length");
            if (len - p < flen) { complete = 0; break; }
            char k = cols[c].kind;
            int32_t want = fixed_size(k);
            if (want && flen != want) return decode_error(err, rows, c, "field size differs from its type's");
            const uint8_t *f = buf + p;
            Py_ssize_t need = 0;
            if (k == 's') need = flen;
            else if (k == 'j') {
                if (flen < 1 || f[0] != 1) return decode_error(err, rows, c, "unknown jsonb version");
                need = flen - 1;
            } else if (k == 'u') need = 36;
            else if (k == 'n' || k == 'N') {
                /* an 'N' column counts its text's bytes too: the batches end where they do
                   when it is read as text (and it may turn to text, below) */
                need = numeric_bound(f, flen);
                if (need < 0) return decode_error(err, rows, c, "malformed numeric");
                cols[c].text_in_row = k == 'N' && !decimal_fits(f, &cols[c]);
            }
            add[c] = need;
            p += flen;
        }
        if (!complete) break;  /* the rest of this row comes with the next read */
        int over = 0;
        for (Py_ssize_t c = 0; c < ncols; c++)
            if (cols[c].bound + add[c] > STRING_LIMIT) over = 1;
        if (over && rows > 0) break;  /* the batch ends here; the row starts the next one */
        if (over) return decode_error(err, rows, -1, "one row holds more than 2 GiB of text");
        for (Py_ssize_t c = 0; c < ncols; c++) {
            cols[c].bound += add[c];
            if (cols[c].text_in_row) cols[c].kind = 'n';
        }
        pos = p;
        rows++;
    }
    *rows_out = rows;
    *end_out = pos;
    return 0;
}

static void set_bit(uint8_t *bits, Py_ssize_t i) { bits[i >> 3] |= (uint8_t)(1u << (i & 7)); }

/* The flagged date and timestamp fields of a batch: (row, column, code, raw) quadruples,
   grown as they turn up. */
typedef struct {
    int64_t *items;
    Py_ssize_t count, cap;
    int failed;
} Found;

static void found_add(Found *f, Py_ssize_t row, Py_ssize_t col, int code, int64_t raw) {
    if (f->failed) return;
    if (f->count + 4 > f->cap) {
        Py_ssize_t cap = f->cap ? 2 * f->cap : 128;
        int64_t *grown = cap < PY_SSIZE_T_MAX / 16 ? PyMem_RawRealloc(f->items, (size_t)cap * sizeof(int64_t)) : NULL;
        if (grown == NULL) {
            f->failed = 1;
            return;
        }
        f->items = grown;
        f->cap = cap;
    }
    f->items[f->count++] = row;
    f->items[f->count++] = col;
    f->items[f->count++] = code;
    f->items[f->count++] = raw;
}

/* The range of the common format (Python's datetime: 0001-01-01 .. 9999-12-31 23:59:59.999999)
   in PostgreSQL's units: days and microseconds since 2000-01-01. Compared before any epoch
   shift, so the shift never overflows. */
#define DATE_MIN (-719162 - DATE_SHIFT)
#define DATE_MAX (2932896 - DATE_SHIFT)
#define TIMESTAMP_MIN (-62135596800000000LL - TIMESTAMP_SHIFT)
#define TIMESTAMP_MAX (253402300799999999LL - TIMESTAMP_SHIFT)

/* 0 for a date or timestamp field the common format holds; else +1/-1 for +/-infinity, +2/-2
   after/before the range (PostgreSQL's value in *raw). */
static int out_of_range(char k, const uint8_t *f, int64_t *raw) {
    if (k == 'D') {
        int32_t v = (int32_t)be32(f);
        *raw = v;
        if (v == INT32_MAX || v == INT32_MIN) return v == INT32_MAX ? 1 : -1;
        return v > DATE_MAX ? 2 : v < DATE_MIN ? -2 : 0;
    }
    if (k == 'T') {
        int64_t v = (int64_t)be64(f);
        *raw = v;
        if (v == INT64_MAX || v == INT64_MIN) return v == INT64_MAX ? 1 : -1;
        return v > TIMESTAMP_MAX ? 2 : v < TIMESTAMP_MIN ? -2 : 0;
    }
    return 0;
}

/* Second pass (no Python objects touched): fill the column buffers of `rows` rows. */
static void fill(const uint8_t *buf, Py_ssize_t start, Py_ssize_t rows, const Column *cols, Py_ssize_t ncols,
                 uint8_t **values, uint8_t **data, uint8_t **validity, Py_ssize_t *nulls, Py_ssize_t *used,
                 Found *found) {
    static const char HEXD[] = "0123456789abcdef";
    Py_ssize_t pos = start;
    for (Py_ssize_t r = 0; r < rows; r++) {
        pos += 2;
        for (Py_ssize_t c = 0; c < ncols; c++) {
            int32_t flen = (int32_t)be32(buf + pos);
            pos += 4;
            char k = cols[c].kind;
            int32_t *off = (int32_t *)values[c];
            if (flen == -1) {
                nulls[c]++;
                switch (k) {
                    case 'b': case 'N': break;  /* zeroed */
                    case 'D': ((int32_t *)values[c])[r] = 0; break;
                    case 's': case 'j': case 'u': case 'n': off[r + 1] = (int32_t)used[c]; break;
                    default: ((int64_t *)values[c])[r] = 0;
                }
                continue;
            }
            const uint8_t *f = buf + pos;
            pos += flen;
            int64_t raw = 0;
            int code = out_of_range(k, f, &raw);
            if (code) {  /* no value in the common format: null here, the row flagged for the caller */
                nulls[c]++;
                if (k == 'D') ((int32_t *)values[c])[r] = 0;
                else ((int64_t *)values[c])[r] = 0;
                found_add(found, r, c, code, raw);
                continue;
            }
            set_bit(validity[c], r);
            switch (k) {
                case 'h': ((int64_t *)values[c])[r] = (int16_t)be16(f); break;
                case 'i': ((int64_t *)values[c])[r] = (int32_t)be32(f); break;
                case 'q': ((int64_t *)values[c])[r] = (int64_t)be64(f); break;
                case 'T': ((int64_t *)values[c])[r] = (int64_t)be64(f) + TIMESTAMP_SHIFT; break;
                case 'D': ((int32_t *)values[c])[r] = (int32_t)be32(f) + DATE_SHIFT; break;
                case 'f': {
                    uint32_t u = be32(f);
                    float x;
                    memcpy(&x, &u, 4);
                    ((double *)values[c])[r] = (double)x;
                    break;
                }
                case 'd': {
                    uint64_t u = be64(f);
                    double x;
                    memcpy(&x, &u, 8);
                    ((double *)values[c])[r] = x;
                    break;
                }
                case 'b': if (f[0]) set_bit(values[c], r); break;
                case 's': memcpy(data[c] + used[c], f, (size_t)flen); used[c] += flen; off[r + 1] = (int32_t)used[c]; break;
                case 'j': memcpy(data[c] + used[c], f + 1, (size_t)flen - 1); used[c] += flen - 1; off[r + 1] = (int32_t)used[c]; break;
                case 'u': {
                    uint8_t *d = data[c] + used[c];
                    for (int i = 0; i < 16; i++) {
                        if (i == 4 || i == 6 || i == 8 || i == 10) *d++ = '-';
                        *d++ = (uint8_t)HEXD[f[i] >> 4];
                        *d++ = (uint8_t)HEXD[f[i] & 15];
                    }
                    used[c] += 36;
                    off[r + 1] = (int32_t)used[c];
                    break;
                }
                case 'n': used[c] += numeric_text(f, data[c] + used[c]); off[r + 1] = (int32_t)used[c]; break;
                case 'N': {  /* scan took every value of the column: this cannot fail */
                    __int128 v = 0;
                    numeric_decimal(f, cols[c].limit, cols[c].scale, &v);
                    memcpy(values[c] + 16 * r, &v, 16);  /* Arrow's layout: the native int128's */
                    break;
                }
            }
        }
    }
}

/* An 'N' column's precision and scale, from its two bytes of ``decimals``. */
static int set_decimal(Column *col, const Py_buffer *decimals, Py_ssize_t c, Py_ssize_t ncols) {
    if (decimals->obj == NULL || decimals->len != 2 * ncols) {
        PyErr_SetString(PyExc_ValueError, "decimals must have two bytes a column");
        return -1;
    }
    int precision = ((const uint8_t *)decimals->buf)[2 * c], scale = ((const uint8_t *)decimals->buf)[2 * c + 1];
    if (precision < 1 || precision > 38 || scale > precision) {
        PyErr_Format(PyExc_ValueError, "column %zd: decimal128(%d, %d) is not 0 <= s <= p <= 38", c, precision, scale);
        return -1;
    }
    col->scale = scale;
    col->whole_digits = precision - scale;
    col->limit = 1;
    for (int i = 0; i < precision; i++) col->limit *= 10;  /* 10^38 < 2^127 */
    return 0;
}

static PyObject *new_zeroed(Py_ssize_t n) {
    PyObject *b = PyBytes_FromStringAndSize(NULL, n);
    if (b != NULL) memset(PyBytes_AS_STRING(b), 0, (size_t)n);
    return b;
}

PyObject *copy_decode(PyObject *self, PyObject *args) {
    Py_buffer view, kinds_view, decimals = {0};
    Py_ssize_t start, max_rows;
    if (!PyArg_ParseTuple(args, "y*ny*n|y*", &view, &start, &kinds_view, &max_rows, &decimals)) return NULL;
    PyObject *result = NULL;
    if (!view.readonly) {  /* the two passes must see the same bytes: no buffer another thread may write */
        PyErr_SetString(PyExc_ValueError, "data must be an immutable buffer such as bytes");
        PyBuffer_Release(&view);
        PyBuffer_Release(&kinds_view);
        if (decimals.obj != NULL) PyBuffer_Release(&decimals);
        return NULL;
    }
    const char *kinds = kinds_view.buf;
    Py_ssize_t ncols = kinds_view.len;
    Column *cols = PyMem_Calloc((size_t)(ncols ? ncols : 1), sizeof(Column));
    uint8_t **ptrs = PyMem_Calloc((size_t)(3 * ncols + 1), sizeof(uint8_t *));
    Py_ssize_t *counts = PyMem_Calloc((size_t)(3 * ncols + 1), sizeof(Py_ssize_t));
    if (cols == NULL || ptrs == NULL || counts == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t c = 0; c < ncols; c++) {
        char k = kinds[c];
        if (!fixed_size(k) && !is_string_kind(k) && k != 'N') {
            PyErr_Format(PyExc_ValueError, "unknown column kind %c", k);
            goto done;
        }
        cols[c].kind = k;
        if (k == 'N' && set_decimal(&cols[c], &decimals, c, ncols) < 0) goto done;
    }
    if (start < 0 || start > view.len || max_rows < 0) {
        PyErr_SetString(PyExc_ValueError, "start or max_rows out of range");
        goto done;
    }
    Py_ssize_t rows = 0, end = start;
    int finished = 0;
    ScanError err = {0, 0, NULL};
    int scanned;
    Py_BEGIN_ALLOW_THREADS
    scanned = scan(view.buf, view.len, start, ncols, max_rows, cols, counts + 2 * ncols, &rows, &end,
                   &finished, &err);
    Py_END_ALLOW_THREADS
    if (scanned < 0) {
        PyErr_Format(PyExc_ValueError, "binary COPY row %zd, column %zd: %s", err.row, err.col, err.what);
        goto done;
    }
    uint8_t **values = ptrs, **data = ptrs + ncols, **validity = ptrs + 2 * ncols;
    Py_ssize_t *nulls = counts, *used = counts + ncols;
    for (Py_ssize_t c = 0; c < ncols; c++) {
        char k = cols[c].kind;
        /* rows <= len / 2 (a row is at least its field count): these sizes cannot overflow */
        Py_ssize_t vbytes = k == 'b'                ? (rows + 7) / 8
                            : is_string_kind(k)       ? 4 * (rows + 1)
                            : k == 'D'                ? 4 * rows
                            : k == 'N'                ? 16 * rows
                                                      : 8 * rows;
        cols[c].values = new_zeroed(vbytes);
        cols[c].validity = new_zeroed((rows + 7) / 8);
        cols[c].data = is_string_kind(k) ? PyBytes_FromStringAndSize(NULL, cols[c].bound) : NULL;
        if (cols[c].values == NULL || cols[c].validity == NULL || (is_string_kind(k) && cols[c].data == NULL)) goto done;
        values[c] = (uint8_t *)PyBytes_AS_STRING(cols[c].values);
        validity[c] = (uint8_t *)PyBytes_AS_STRING(cols[c].validity);
        data[c] = cols[c].data ? (uint8_t *)PyBytes_AS_STRING(cols[c].data) : NULL;
    }
    Found found = {NULL, 0, 0, 0};
    Py_BEGIN_ALLOW_THREADS
    fill(view.buf, start, rows, cols, ncols, values, data, validity, nulls, used, &found);
    Py_END_ALLOW_THREADS
    PyObject *bad = found.failed ? PyErr_NoMemory()
                    : found.count ? PyBytes_FromStringAndSize((const char *)found.items, found.count * 8)
                                  : Py_NewRef(Py_None);
    PyMem_RawFree(found.items);
    if (bad == NULL) goto done;
    PyObject *columns = PyList_New(ncols);
    if (columns == NULL) {
        Py_DECREF(bad);
        goto done;
    }
    for (Py_ssize_t c = 0; c < ncols; c++) {
        PyObject *valid = nulls[c] ? cols[c].validity : Py_None;
        PyObject *item;
        if (cols[c].data != NULL) {
            if (used[c] < cols[c].bound && _PyBytes_Resize(&cols[c].data, used[c]) < 0) {
                Py_DECREF(columns);
                Py_DECREF(bad);
                goto done;
            }
            item = Py_BuildValue("(OOOn)", cols[c].values, cols[c].data, valid, nulls[c]);
        } else {
            item = Py_BuildValue("(OOn)", cols[c].values, valid, nulls[c]);
        }
        if (item == NULL) {
            Py_DECREF(columns);
            Py_DECREF(bad);
            goto done;
        }
        PyList_SET_ITEM(columns, c, item);
    }
    result = Py_BuildValue("(nnONN)", end, rows, finished ? Py_True : Py_False, columns, bad);
done:
    if (cols != NULL) {
        for (Py_ssize_t c = 0; c < ncols; c++) {
            Py_XDECREF(cols[c].values);
            Py_XDECREF(cols[c].data);
            Py_XDECREF(cols[c].validity);
        }
        PyMem_Free(cols);
    }
    PyMem_Free(ptrs);
    PyMem_Free(counts);
    PyBuffer_Release(&view);
    PyBuffer_Release(&kinds_view);
    if (decimals.obj != NULL) PyBuffer_Release(&decimals);
    return result;
}

/*
 *   copy_changed(payload, existing, compare, key) -> bytes
 *       Which rows of a binary COPY payload would change the target. `payload` is a whole
 *       binary COPY stream (header, rows, trailer) whose rows have len(compare) fields, in
 *       strictly increasing order of the integer field number `key`; `existing` is the
 *       target's binary COPY output for the fields whose `compare` byte is not 0 (in payload
 *       order), ordered by the same key. One byte a payload row: 0 when `existing` holds a
 *       row with its key whose compared fields are the same, else 1. A field is the same when
 *       its bytes are (binary COPY fields of one type are equal exactly when the values are
 *       identical); a field whose compare byte is 'n' is a numeric, compared after dropping
 *       the zero base-10000 digits PostgreSQL drops on receipt (weight adjusted), since the
 *       payload may carry them. A malformed stream, a key that is NULL, not 2, 4 or 8 bytes,
 *       or out of order raises ValueError (the caller then writes every row).
 */
typedef struct {
    const uint8_t *p, *end;
    int done; /* the trailer (or the end of the data) was read */
} Stream;

static int stream_start(Stream *s, const uint8_t *buf, Py_ssize_t len) {
    s->p = buf;
    s->end = buf + len;
    s->done = 0;
    if (len < 19 || memcmp(buf, "PGCOPY\n\377\r\n\0", 11) != 0) return -1;
    uint32_t ext = ((uint32_t)buf[15] << 24) | ((uint32_t)buf[16] << 16) | ((uint32_t)buf[17] << 8) | buf[18];
    if (ext > (uint32_t)(len - 19)) return -1;
    s->p = buf + 19 + ext;
    return 0;
}

/* the next row's fields: starts (NULL for a NULL field) and lengths; 0 at the trailer or the
   end of the data (and ever after), 1 for a row, -1 when malformed */
static int next_row(Stream *s, Py_ssize_t nfields, const uint8_t **starts, int32_t *lens) {
    if (s->done) return 0;
    if (s->end - s->p < 2) {
        s->done = 1;
        return s->p == s->end ? 0 : -1;
    }
    int16_t n = (int16_t)(((uint16_t)s->p[0] << 8) | s->p[1]);
    s->p += 2;
    if (n == -1) {
        s->done = 1;
        return 0;
    }
    if (n != nfields) return -1;
    for (Py_ssize_t f = 0; f < nfields; f++) {
        if (s->end - s->p < 4) return -1;
        int32_t len = (int32_t)(((uint32_t)s->p[0] << 24) | ((uint32_t)s->p[1] << 16) | ((uint32_t)s->p[2] << 8) | s->p[3]);
        s->p += 4;
        if (len < -1 || len > s->end - s->p) return -1;
        starts[f] = len < 0 ? NULL : s->p;
        lens[f] = len;
        if (len > 0) s->p += len;
    }
    return 1;
}

static int key_value(const uint8_t *p, int32_t len, int64_t *out) {
    if (p == NULL || (len != 2 && len != 4 && len != 8)) return -1;
    uint64_t v = 0;
    for (int32_t i = 0; i < len; i++) v = (v << 8) | p[i];
    if (len == 2) *out = (int16_t)v;
    else if (len == 4) *out = (int32_t)v;
    else *out = (int64_t)v;
    return 0;
}

/* a binary numeric without leading and trailing zero digits: its digits, their count and weight */
static int numeric_core(const uint8_t *p, int32_t len, const uint8_t **digits, int *ndigits, int *weight) {
    if (len < 8) return -1;
    int n = be16(p);
    if (len != 8 + 2 * n) return -1;
    int w = (int16_t)be16(p + 2);
    const uint8_t *d = p + 8;
    while (n > 0 && be16(d) == 0) {
        d += 2;
        n--;
        w--;
    }
    while (n > 0 && be16(d + 2 * (n - 1)) == 0) n--;
    *digits = d;
    *ndigits = n;
    *weight = n ? w : 0;
    return 0;
}

/* the sign PostgreSQL stores: a zero is positive; NaN and the infinities keep theirs */
static uint16_t numeric_sign(const uint8_t *p, int ndigits) {
    uint16_t sign = be16(p + 4);
    return ndigits || (sign & 0xC000) == 0xC000 ? sign : 0;
}

static int same_numeric(const uint8_t *a, int32_t alen, const uint8_t *b, int32_t blen) {
    const uint8_t *da, *db;
    int na, nb, wa, wb;
    if (numeric_core(a, alen, &da, &na, &wa) < 0 || numeric_core(b, blen, &db, &nb, &wb) < 0) return 0;
    return na == nb && wa == wb && numeric_sign(a, na) == numeric_sign(b, nb) && be16(a + 6) == be16(b + 6) &&
           memcmp(da, db, (size_t)(2 * na)) == 0;
}

static int same_field(uint8_t how, const uint8_t *a, int32_t alen, const uint8_t *b, int32_t blen) {
    if (a == NULL || b == NULL) return a == NULL && b == NULL;
    if (how == 'n') return same_numeric(a, alen, b, blen);
    return alen == blen && memcmp(a, b, (size_t)alen) == 0;
}

PyObject *copy_changed(PyObject *self, PyObject *args) {
    Py_buffer pay, old, cmp;
    Py_ssize_t key;
    if (!PyArg_ParseTuple(args, "y*y*y*n", &pay, &old, &cmp, &key)) return NULL;
    PyObject *result = NULL, *out = NULL;
    Py_ssize_t nfields = cmp.len, ncompared = 0, key_at = -1;
    const uint8_t *compare = cmp.buf;
    for (Py_ssize_t f = 0; f < nfields; f++) {
        if (f == key) key_at = compare[f] ? ncompared : -1;
        if (compare[f]) ncompared++;
    }
    const uint8_t **starts = PyMem_Calloc((size_t)(nfields + ncompared + 1), sizeof(uint8_t *));
    int32_t *lens = PyMem_Calloc((size_t)(nfields + ncompared + 1), sizeof(int32_t));
    if (starts == NULL || lens == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (nfields < 1 || nfields > 1600 || key < 0 || key >= nfields || key_at < 0) {
        PyErr_SetString(PyExc_ValueError, "the compared fields must include the key");
        goto done;
    }
    Stream ps, os;
    if (stream_start(&ps, pay.buf, pay.len) < 0 || stream_start(&os, old.buf, old.len) < 0) {
        PyErr_SetString(PyExc_ValueError, "not a binary COPY stream");
        goto done;
    }
    Py_ssize_t cap = 1024, rows = 0;
    out = PyBytes_FromStringAndSize(NULL, cap);
    if (out == NULL) goto done;
    const uint8_t **ostarts = starts + nfields;
    int32_t *olens = lens + nfields;
    int have_old = 0; /* 0: nothing read yet, 1: okey is the current target row, -1: no more */
    int64_t prev = 0, okey = 0;
    const char *why = NULL;
    for (;;) {
        int r = next_row(&ps, nfields, starts, lens);
        if (r == 0) break;
        int64_t k;
        if (r < 0) why = "malformed payload row";
        else if (key_value(starts[key], lens[key], &k) < 0) why = "the key is NULL or not an integer";
        else if (rows > 0 && k <= prev) why = "the payload's keys are not strictly increasing";
        if (why != NULL) break;
        prev = k;
        while (have_old == 0 || (have_old == 1 && okey < k)) { /* to the first target key >= k */
            int o = next_row(&os, ncompared, ostarts, olens);
            if (o == 0) {
                have_old = -1;
                break;
            }
            int64_t next;
            if (o < 0 || key_value(ostarts[key_at], olens[key_at], &next) < 0 || (have_old == 1 && next <= okey)) {
                why = "malformed or unordered target rows";
                break;
            }
            okey = next;
            have_old = 1;
        }
        if (why != NULL) break;
        uint8_t changed = 1;
        if (have_old == 1 && okey == k) {
            changed = 0;
            for (Py_ssize_t f = 0, j = 0; f < nfields && !changed; f++) {
                if (!compare[f]) continue;
                changed = !same_field(compare[f], starts[f], lens[f], ostarts[j], olens[j]);
                j++;
            }
        }
        if (rows == cap) {
            cap *= 2;
            if (_PyBytes_Resize(&out, cap) < 0) goto done;
        }
        ((uint8_t *)PyBytes_AS_STRING(out))[rows++] = changed;
    }
    if (why != NULL) {
        PyErr_SetString(PyExc_ValueError, why);
        goto done;
    }
    if (_PyBytes_Resize(&out, rows) < 0) goto done;
    result = out;
    out = NULL;
done:
    Py_XDECREF(out);
    PyMem_Free(starts);
    PyMem_Free(lens);
    PyBuffer_Release(&pay);
    PyBuffer_Release(&old);
    PyBuffer_Release(&cmp);
    return result;
}
